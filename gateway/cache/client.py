"""The gateway's Redis client: connection-level deadlines, and every round trip counted.

Every network send of a connection is one round trip (one command, one
pipeline, one script call), counted in `contactpoint_redis_round_trips_total`.
The deadline is the connection's (`socket_timeout`, `socket_connect_timeout`),
so no call needs an `asyncio.timeout` of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis

from gateway.telemetry.metrics import REDIS_ROUND_TRIPS

if TYPE_CHECKING:
    from collections.abc import Iterable

    from redis.asyncio.connection import AbstractConnection

__all__ = ["open_redis"]


_COUNTING: dict[str, type[AbstractConnection]] = {}


def _counting(base: type[AbstractConnection]) -> type[AbstractConnection]:
    """`base` (TCP, TLS or Unix socket, as the URL chose) with its sends counted."""
    made = _COUNTING.get(base.__qualname__)
    if made is not None and made.__mro__[1] is base:
        return made

    class Counting(base):  # type: ignore[valid-type,misc]
        async def send_packed_command(self, command: bytes | str | Iterable[bytes],
                                      check_health: bool = True) -> None:
            REDIS_ROUND_TRIPS.inc()
            await super().send_packed_command(command, check_health)

    Counting.__name__ = Counting.__qualname__ = f"Counting{base.__name__}"
    _COUNTING[base.__qualname__] = Counting
    return Counting


def open_redis(url: str, timeout_seconds: float, **options: Any) -> aioredis.Redis:  # noqa: ANN401
    """A client for `url` whose every call has a deadline and whose round trips are counted."""
    client = aioredis.Redis.from_url(url, socket_timeout=timeout_seconds,
                                     socket_connect_timeout=timeout_seconds,
                                     retry_on_timeout=False, **options)
    pool = client.connection_pool
    pool.connection_class = _counting(pool.connection_class)
    return client
