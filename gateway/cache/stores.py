"""Where sealed cache entries live: Redis (shared by every process) or process memory.

A store never raises to its caller: Redis being down means no cache, not no
service. After a Redis failure the store stays away for `retry_seconds` so a
dead Redis costs no per-request timeout, and says so in `status`.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Protocol

from redis.exceptions import RedisError

from gateway.cache.line import ClientLine

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import redis.asyncio as aioredis

    from gateway.cache.line import Line


__all__ = ["CacheStore", "MemoryStore", "RedisStore"]

log = logging.getLogger(__name__)


class CacheStore(Protocol):
    """Bytes under string keys with a TTL; failures are absorbed, never raised."""

    @property
    def kind(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def shared(self) -> bool:
        """Whether its entries are in Redis, readable by a script now (not in a back-off)."""
        ...

    def failed(self, exc: BaseException) -> None:
        """A call that read its entries (a script) failed: stay away for a while."""
        ...

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...

    async def set_many(self, items: Sequence[tuple[str, bytes, float]]) -> None: ...

    async def delete_many(self, keys: Sequence[str]) -> None: ...

    async def write(self, purges: Sequence[str], items: Sequence[tuple[str, bytes, float]]) -> None:
        """`delete_many(purges)` then `set_many(items)`, in one round trip."""
        ...

    def set_later(self, items: Sequence[tuple[str, bytes, float]]) -> None:
        """`set_many(items)` without waiting: a later call of this store sees them.

        For the write-back after a response's sources are in: nothing waits on it.
        """
        ...

    async def settle(self) -> None:
        """Return once every `set_later` so far has landed or failed (tests, shutdown)."""
        ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


class MemoryStore:
    """An in-process, bounded, TTL store: the demo's embedded default."""

    kind = "memory"
    status = "ok"
    shared = False

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._max = max_entries
        self._clock = clock

    def _get(self, key: str, now: float) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= now:
            del self._entries[key]
            return None
        return entry[1]

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        now = self._clock()
        return [self._get(key, now) for key in keys]

    async def set_many(self, items: Sequence[tuple[str, bytes, float]]) -> None:
        self.set_later(items)

    async def delete_many(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._entries.pop(key, None)

    async def write(self, purges: Sequence[str], items: Sequence[tuple[str, bytes, float]]) -> None:
        await self.delete_many(purges)
        await self.set_many(items)

    def set_later(self, items: Sequence[tuple[str, bytes, float]]) -> None:
        now = self._clock()  # in memory, now: a later call sees them all the same
        for key, value, ttl in items:
            self._entries[key] = (now + ttl, value)
            self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def failed(self, exc: BaseException) -> None:
        """Nothing to stay away from."""

    async def settle(self) -> None:
        """Its later writes land at once."""

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._entries.clear()


class RedisStore:
    """Redis through the hot path's line (`gateway.cache.line`), else the redis-py client."""

    kind = "redis"

    def __init__(self, client: aioredis.Redis, retry_seconds: float,
                 clock: Callable[[], float] = time.monotonic, *, line: Line | None = None) -> None:
        self._client = client
        self._line: Line = ClientLine(client) if line is None else line
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._down_until = 0.0

    @property
    def status(self) -> str:
        return "unavailable" if self._down_until > self._clock() else "ok"

    @property
    def shared(self) -> bool:
        return self._usable()

    def _usable(self) -> bool:
        return self._down_until <= self._clock()

    def failed(self, exc: BaseException) -> None:
        self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        self._down_until = self._clock() + self._retry_seconds
        log.warning("cache store unavailable, serving uncached: %s", type(exc).__name__)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys or not self._usable():
            return [None] * len(keys)
        try:
            values = await self._line.execute_command("MGET", *keys)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            return [None] * len(keys)
        return [value if isinstance(value, bytes) else None for value in values]

    async def set_many(self, items: Sequence[tuple[str, bytes, float]]) -> None:
        if not items or not self._usable():
            return
        await self._send([_set(key, value, ttl) for key, value, ttl in items])

    async def delete_many(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        try:
            await self._line.execute_command("DEL", *keys)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)

    async def _send(self, commands: Sequence[Sequence[str | bytes | int]]) -> None:
        """`commands` in one round trip; the first error (a reply or the connection) fails it."""
        try:
            replies = await self._line.execute_many(commands)
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)

    async def write(self, purges: Sequence[str], items: Sequence[tuple[str, bytes, float]]) -> None:
        # Purges are sent even in a back-off period (as `delete_many`): forgetting a
        # shielded child's answers is worth a try; writes wait for Redis to be back.
        if not items or not self._usable():
            await self.delete_many(purges)
            return
        commands: list[Sequence[str | bytes | int]] = [("DEL", *purges)] if purges else []
        commands += [_set(key, value, ttl) for key, value, ttl in items]
        await self._send(commands)

    def set_later(self, items: Sequence[tuple[str, bytes, float]]) -> None:
        if items and self._usable():
            self._line.post([_set(key, value, ttl) for key, value, ttl in items], self._failed)

    async def ping(self) -> bool:
        """Probe Redis now (ignores the back-off) and update the status."""
        try:
            await self._client.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            return False
        self._down_until = 0.0
        return True

    async def settle(self) -> None:
        await self._line.drain()

    async def close(self) -> None:
        await self._line.aclose()  # after the posted writes are answered
        await self._client.aclose()


def _set(key: str, value: bytes, ttl: float) -> tuple[str, str, bytes, str, int]:
    return ("SET", key, value, "PX", max(1, int(ttl * 1000)))

