"""Request-rate limits per subject and per client: GCRA, decided in one Redis call.

The generic cell rate algorithm keeps one number per key, the theoretical
arrival time (TAT) of the next request: each request moves it on by the
emission interval (a minute over the per-minute rate), and a request is refused
when the TAT would run more than `burst` intervals ahead of now. A refused
request moves nothing, and the subject's and the client's limits are checked
together, so one refusal never spends the other's allowance.

If Redis fails, the same algorithm runs in this process until the back-off ends.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.core.errors import RateLimitedError
from gateway.core.records import fast_init
from gateway.crypto.pseudonyms import REMEMBERED
from gateway.limits.budget_scripts import GCRA
from gateway.limits.counters import REDIS_FAILURES, Backoff, KeyHasher
from gateway.telemetry.metrics import RATE_LIMIT_REFUSALS

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import redis.asyncio as aioredis

    from gateway.settings import BudgetSettings

__all__ = ["RateLimiter", "RatePlan"]

_PRUNE_AT = 100_000
"""In-process keys kept before expired ones are swept (only while Redis is away)."""


def _interval_ms(per_minute: int) -> int:
    return max(1, round(60_000 / per_minute))


class _LocalGcra:
    """The in-process stand-in for the GCRA script: same rule, one dict of TATs."""

    def __init__(self) -> None:
        self._tats: dict[str, int] = {}

    def wait_ms(self, keys: Sequence[str], limits: Sequence[tuple[int, int]], now: int) -> int:
        tats = [max(self._tats.get(key, now), now) + interval
                for key, (interval, _) in zip(keys, limits, strict=True)]
        wait = max(tat - now - burst * interval
                   for tat, (interval, burst) in zip(tats, limits, strict=True))
        if wait > 0:
            return wait
        if len(self._tats) >= _PRUNE_AT:
            self._tats = {k: t for k, t in self._tats.items() if t > now}
        self._tats.update(zip(keys, tats, strict=True))
        return 0


@fast_init
@dataclass(frozen=True, slots=True)
class RatePlan:
    """One request's rate-limit check, worked out but not yet made (see `RateLimiter.plan`)."""

    keys: tuple[str, str]
    now: int
    """Integer ms."""
    args: tuple[bytes]
    """The GCRA script's argument, its spec: now, then each key's interval (ms) and burst."""
    wire: tuple[bytes, bytes]
    """`keys`, encoded for the script call."""


class RateLimiter:
    """Refuses a request when its subject or its client is over its per-minute rate.

    Keys are `{key_prefix}r:s:{HMAC of subject}` and `{key_prefix}r:c:{HMAC of client}`,
    each holding a TAT in ms that expires when it is no longer ahead of now.
    """

    def __init__(self, settings: BudgetSettings, redis: aioredis.Redis | None, key_prefix: str,
                 secret: str, clock: Callable[[], float] = time.time, *,
                 retry_seconds: float = 5.0) -> None:
        self._limits = ((_interval_ms(settings.subject_requests_per_minute), settings.burst),
                        (_interval_ms(settings.client_requests_per_minute), settings.burst))
        self._prefix = f"{key_prefix}r:"
        self._hash = KeyHasher(secret, "rate-limit-keys")
        self._clock = clock
        self._backoff = Backoff("rate limits", retry_seconds, clock)
        self._local = _LocalGcra()
        self._redis = redis
        self._script = redis.register_script(GCRA) if redis is not None else None
        self._tail = "".join(f",{v}" for limit in self._limits for v in limit)
        self._keys: dict[tuple[str, str], tuple[tuple[str, str], tuple[bytes, bytes]]] = {}

    @property
    def status(self) -> str:
        """"degraded" while Redis is failing and limits hold per process only, else "ok"."""
        return "degraded" if self._redis is not None and self._backoff.down else "ok"

    @property
    def shared(self) -> bool:
        """Whether the check may be made in Redis now (not inside a back-off period)."""
        return self._script is not None and not self._backoff.down

    def plan(self, *, subject: str, client_id: str) -> RatePlan:
        """The check for one request of `subject` through `client_id`, to be made later."""
        now = int(self._clock() * 1000)
        known = self._keys.get((subject, client_id))
        if known is None:
            keys = (f"{self._prefix}s:{self._hash('subject', subject)}",
                    f"{self._prefix}c:{self._hash('client', client_id)}")
            if len(self._keys) >= REMEMBERED:
                self._keys.clear()
            known = self._keys[subject, client_id] = (keys, (keys[0].encode(),
                                                               keys[1].encode()))
        return RatePlan(known[0], now, (f"{now}{self._tail}".encode(),), known[1])

    async def check(self, *, subject: str, client_id: str) -> None:
        """Count one request; raises `RateLimitedError` (nothing counted) when over a limit."""
        await self.check_plan(self.plan(subject=subject, client_id=client_id))

    async def check_plan(self, plan: RatePlan) -> None:
        """Make the check `plan` describes, in Redis or (while it is away) in this process."""
        self.settle(await self._wait_ms(plan))

    def settle(self, wait_ms: int) -> None:
        """Raise `RateLimitedError` when the check said to wait `wait_ms` (> 0)."""
        if wait_ms > 0:
            RATE_LIMIT_REFUSALS.labels("requests_per_minute").inc()
            raise RateLimitedError(retry_after=max(1, math.ceil(wait_ms / 1000)))

    def locally(self, plan: RatePlan) -> int:
        """The wait in ms by this process's own counts (Redis away): 0 passes."""
        return self._local.wait_ms(plan.keys, self._limits, plan.now)

    def failed(self, exc: BaseException) -> None:
        """Redis failed under a call that carried this check: count here for a while."""
        self._backoff.failed(exc)

    def succeeded(self) -> None:
        self._backoff.succeeded()

    async def _wait_ms(self, plan: RatePlan) -> int:
        if self._script is None or self._backoff.down:
            return self.locally(plan)
        try:
            reply = await self._script(keys=list(plan.wire), args=list(plan.args))
        except REDIS_FAILURES as exc:
            self._backoff.failed(exc)
            return self.locally(plan)
        self._backoff.succeeded()
        return int(reply)
