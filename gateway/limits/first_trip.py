"""A request's first Redis round trip: replay check, rate limit, budget charges, cache read.

`FirstTrip` sends `ADMIT_CHARGE_READ` (one script call) and takes its reply
apart; it knows keys and arguments only. What each part means, and what to do
when Redis is away, stays with the part's owner (`RateLimiter`, `Budgets`, the
DPoP replay cache, the cache store), composed in the lookup pipeline.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from redis.exceptions import NoScriptError

from gateway.core.records import fast_init
from gateway.limits.budget_scripts import ADMIT_CHARGE_READ
from gateway.limits.windows import Outcome

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gateway.limits.budgets import PendingCharge
    from gateway.limits.ratelimit import RatePlan

__all__ = ["FirstReply", "FirstTrip", "OnceKey", "ScriptSender"]

_HEADS = 256
"""Encoded script heads (one per shape of request) kept before the memory starts again."""


@dataclass(frozen=True, slots=True)
class OnceKey:
    """A key that may be set only once (a DPoP proof's `jti`), for `ttl` seconds."""

    key: str
    ttl: int


@fast_init
@dataclass(frozen=True, slots=True)
class FirstReply:
    """What the script did, in its order; a part after a refusal was not reached."""

    first_use: bool | None
    """False: the once-key was set before (replay), nothing else was done; None: not asked."""
    wait_ms: int | None
    """Above 0: rate-limited, nothing else was done; None: not asked or not reached."""
    outcomes: tuple[Outcome, ...]
    """The charges made, in order; a refused one is the last."""
    values: tuple[bytes | None, ...] | None
    """The keys read, when every charge was accepted; else None."""


class ScriptSender(Protocol):
    """What sends the script: the hot path's `gateway.cache.line`, or a redis-py client."""

    async def execute_command(self, *args: str | bytes | int) -> Any: ...  # noqa: ANN401


class FirstTrip:
    """Sends one request's admission, charges and cache read to Redis as one script call.

    The call is `EVALSHA` on the hot path's line (`gateway.cache.line`: the calls of
    concurrent requests leave in one send); a Redis that does not know the script yet
    (NOSCRIPT) is sent it once.
    """

    def __init__(self, line: ScriptSender) -> None:
        self._line = line
        self._sha = hashlib.sha1(ADMIT_CHARGE_READ.encode(),
                                usedforsecurity=False).hexdigest().encode()
        self._heads: dict[tuple[bool, int, int, int, int], bytes] = {}

    async def __call__(self, once: OnceKey | None, rate: RatePlan | None,
                       charges: Sequence[PendingCharge], reads: Sequence[str]) -> FirstReply:
        """Raises what the client raises when Redis fails (nothing is then known)."""
        shape = (once is not None, once.ttl if once is not None else 0,
                 2 if rate is not None else 0, len(charges), len(reads))
        head = self._heads.get(shape)
        if head is None:
            if len(self._heads) >= _HEADS:
                self._heads.clear()
            head = self._heads[shape] = ",".join(str(int(v)) for v in shape).encode()
        keys: list[str | bytes] = []
        args: list[str | bytes] = [head]
        if once is not None:
            keys.append(once.key)
        if rate is not None:
            keys += rate.wire
            args += rate.args
        for charge in charges:
            keys += charge.keys
            args += charge.args
        keys += reads
        try:
            reply = await self._evalsha(len(keys), keys, args)
        except NoScriptError:
            sha: Any = await self._line.execute_command("SCRIPT", "LOAD", ADMIT_CHARGE_READ)
            self._sha = sha if isinstance(sha, bytes) else str(sha).encode()
            reply = await self._evalsha(len(keys), keys, args)
        return _parse(reply, charges, reads)

    async def _evalsha(self, count: int, keys: list[str | bytes],
                       args: list[str | bytes]) -> Any:  # noqa: ANN401
        return await self._line.execute_command("EVALSHA", self._sha, count, *keys, *args)


def _parse(reply: Sequence[Any], charges: Sequence[PendingCharge],
           reads: Sequence[str]) -> FirstReply:
    once, wait = int(reply[0]), int(reply[1])
    first_use = None if once < 0 else once == 1
    wait_ms = None if wait < 0 else wait
    done = list(reply[2:2 + len(charges)])
    outcomes = tuple(Outcome.from_reply(r, len(c.slots)) for r, c in zip(done, charges,
                                                                            strict=False))
    values = None
    if len(reply) > 2 + len(charges):
        raw = reply[2 + len(charges)]
        values = tuple(v if isinstance(v, bytes) else None for v in raw)
        if len(values) != len(reads):
            raise ValueError("the cache read answered for other keys")
    return FirstReply(first_use, wait_ms, outcomes, values)
