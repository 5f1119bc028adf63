"""A request's admission (DPoP replay check, rate limit), carried by its first Redis call.

The web edge does not call Redis to admit a request: it hands the request an
`Admission` (the rate limit's keys, and the proof's replay check when there is
one). The request's first need of Redis (its children's budget charges and
cache read, `Gate.first`) carries it in the same script call, in the order
replay check, rate limit, charges, read, so that a refused request moves
nothing. A request with no such need flushes it on its own before any other
work (`Gate.first` with nothing else) and, at the latest, before its answer
leaves. A hit therefore costs one round trip, a miss two (the write-back).

While Redis is failing, each part behaves as it does on its own: the replay
check and the rate limit in this process, budgets by their per-process share
(or refused), the cache unavailable (live fetches).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from gateway.auth.dpop import DpopProofRejectedError
from gateway.core.errors import RateLimitedError
from gateway.limits.counters import REDIS_FAILURES
from gateway.limits.first_trip import FirstTrip, OnceKey

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gateway.auth.dpop import DeferredReplayCheck
    from gateway.cache import CacheStore
    from gateway.cache.line import Line
    from gateway.core.caller import Caller
    from gateway.limits.budgets import Budgets, PendingCharge
    from gateway.limits.charger import ChildCharger
    from gateway.limits.first_trip import FirstReply
    from gateway.limits.ratelimit import RateLimiter, RatePlan

__all__ = ["Admission", "Gate"]

_REFUSALS = (DpopProofRejectedError, RateLimitedError)


class Admission:
    """One request's pending replay check and rate limit, made once, by whichever need is first.

    `turn` hands it to one carrier; every other need waits there for the
    carrier's verdict, which is then kept for the rest of the request.
    """

    __slots__ = ("_carried", "_done", "_event", "_refusal", "rate", "replay")

    def __init__(self, rate: RatePlan, replay: DeferredReplayCheck | None) -> None:
        self.rate = rate
        self.replay = replay
        self._carried = False
        self._done = False
        self._event: asyncio.Event | None = None
        self._refusal: DpopProofRejectedError | RateLimitedError | None = None

    @property
    def settled(self) -> bool:
        return self._done

    @property
    def refusal(self) -> DpopProofRejectedError | RateLimitedError | None:
        """Why the request was refused (None: admitted, or not yet decided)."""
        return self._refusal

    async def turn(self) -> bool:
        """True when the caller is to carry the admission now; False once it has passed.

        Waits while another need carries it, and raises its refusal.
        """
        while not self._done:
            if not self._carried:
                self._carried = True
                return True
            if self._event is None:
                self._event = asyncio.Event()
            await self._event.wait()
        if self._refusal is not None:
            raise self._refusal
        return False

    def settle(self, refusal: DpopProofRejectedError | RateLimitedError | None) -> None:
        self._refusal, self._done = refusal, True
        self._wake()

    def release(self) -> None:
        """The carrier failed before a verdict: the next need carries the admission again."""
        if not self._done:
            self._carried = False
            self._wake()

    def _wake(self) -> None:
        if self._event is not None:
            self._event.set()
            self._event = None


class Gate:
    """Admission, budget charges and cache read in one round trip; each part's fallback kept."""

    def __init__(self, line: Line | None, rate_limiter: RateLimiter,
                 charger: ChildCharger, store: CacheStore) -> None:
        self._trip = None if line is None else FirstTrip(line)
        self._rate = rate_limiter
        self._charger = charger
        self._budgets: Budgets = charger.budgets
        self._store = store

    def admission(self, caller: Caller, replay: Sequence[DeferredReplayCheck]) -> Admission:
        """The admission `caller`'s request owes (`replay`: checks deferred by authentication)."""
        if len(replay) > 1:
            raise ValueError("one proof per request")
        return Admission(self._rate.plan(subject=caller.subject, client_id=caller.client_id),
                         replay[0] if replay else None)

    async def first(self, admission: Admission | None, caller: Caller, nhs_numbers: Sequence[str],
                    request_id: str, reads: Sequence[str]) -> tuple[bytes | None, ...] | None:
        """Admit (if still owed), charge each child in order, then read `reads`.

        Raises the refusal (replay, rate limit, budget), after which nothing further
        was counted. Returns the values of `reads`, or None when they were not read
        (Redis away, or no store to read): the caller then reads them itself.
        """
        carry = admission is not None and await admission.turn()
        if not carry and not nhs_numbers:
            return None
        carried = admission if carry else None
        try:
            pending = [self._charger.prepare(caller, nhs, request_id) for nhs in nhs_numbers]
            return await self._first(carried, pending, reads)
        finally:
            if carried is not None:
                carried.release()

    async def _first(self, admission: Admission | None, pending: Sequence[PendingCharge],
                     reads: Sequence[str]) -> tuple[bytes | None, ...] | None:
        once = None if admission is None or admission.replay is None else admission.replay
        rate = None if admission is None else admission.rate
        fusable = (self._trip is not None and (once is None or once.cache.shared)
                   and (rate is None or self._rate.shared)
                   and (not pending or self._budgets.shared))
        if not fusable or self._trip is None:
            await self._one_by_one(admission, pending)
            return None
        reads = reads if self._store.shared else ()
        try:
            reply = await self._trip(None if once is None else OnceKey(once.key, once.ttl),
                                     rate, pending, reads)
        except REDIS_FAILURES as exc:
            self._failed(exc, once, rate, pending, reads)
            await self._one_by_one(admission, pending)  # every part now in its own fallback
            return None
        if rate is not None:
            self._rate.succeeded()
        if pending:
            self._budgets.succeeded()
        await self._settle(admission, reply, pending)
        return reply.values if reads else None

    def _failed(self, exc: BaseException, once: DeferredReplayCheck | None,
                rate: RatePlan | None, pending: Sequence[PendingCharge],
                reads: Sequence[str]) -> None:
        if once is not None:
            once.cache.failed(exc)
        if rate is not None:
            self._rate.failed(exc)
        if pending:
            self._budgets.failed(exc)
        if reads:
            self._store.failed(exc)

    async def _settle(self, admission: Admission | None, reply: FirstReply,
                      pending: Sequence[PendingCharge]) -> None:
        if admission is not None:
            try:
                if reply.first_use is False:
                    raise DpopProofRejectedError("proof replayed")
                self._rate.settle(reply.wait_ms or 0)
            except _REFUSALS as exc:
                admission.settle(exc)
                raise
            admission.settle(None)
        for charge, outcome in zip(pending, reply.outcomes, strict=False):
            if outcome.accepted and not outcome.unusual and not any(outcome.marked):
                continue  # nothing to alert or refuse: `settle` would only describe it
            await self._budgets.settle(charge, outcome)

    async def _one_by_one(self, admission: Admission | None,
                          pending: Sequence[PendingCharge]) -> None:
        """Each part on its own, as before they were fused (Redis away, or a part backing off)."""
        if admission is not None:
            try:
                if admission.replay is not None and not await admission.replay.now():
                    raise DpopProofRejectedError("proof replayed")
                await self._rate.check_plan(admission.rate)
            except _REFUSALS as exc:
                admission.settle(exc)
                raise
            admission.settle(None)
        for charge in pending:
            await self._budgets.settle(charge, await self._budgets.count(charge))
