"""Harvesting budgets: how many distinct children a subject or organisation may look up.

A budget counts children, not requests: looking the same child up again in a
window is free, and a looked-up NHS number counts whether or not it matched
anyone. Windows are calendar buckets (the hour, the UTC day) kept as Redis sets
of hashed children, so every gateway process counts against the same budget;
one Lua script charges all windows at once, and a refused charge adds nothing.

If Redis fails, budgets are counted in this process until the back-off ends
(the limit then holds per process), and what was counted meanwhile is written
back to Redis when it returns.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.alerts import Alert, AlertKind
from gateway.core.errors import AccessBudgetExceededError, BudgetsUnavailableError
from gateway.core.records import fast_init
from gateway.crypto.pseudonyms import REMEMBERED, Pseudonymiser
from gateway.limits.budget_scripts import CHARGE_DISTINCT
from gateway.limits.counters import REDIS_FAILURES, Backoff, KeyHasher
from gateway.limits.windows import (
    ORGANISATION_DAY,
    ORGANISATION_HOUR,
    SUBJECT_DAY,
    SUBJECT_HOUR,
    WINDOWS,
    LocalWindows,
    Outcome,
    Slot,
    Window,
)
from gateway.settings import BudgetLimits
from gateway.telemetry.metrics import BUDGET_REFUSALS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    import redis.asyncio as aioredis

    from gateway.alerts import AlertSink
    from gateway.settings import BudgetSettings

__all__ = ["WINDOWS", "Budgets", "Charge", "PendingCharge", "Window", "limits_for",
           "warning_threshold"]

log = logging.getLogger(__name__)

_BASELINE_HOURS_BEFORE_ALERTING = 24
"""Active hours of history an organisation needs before its rate can look unusual."""

@dataclass(frozen=True, slots=True)
class Charge:
    """What one charge did."""

    counted: bool
    """False if this child was already counted in every window (the charge was free)."""
    usage: dict[str, tuple[int, int]]
    """Window name -> (used, limit) after the charge, e.g. {"subject_hour": (7, 20)}."""


@fast_init
@dataclass(frozen=True, slots=True)
class PendingCharge:
    """One charge worked out but not yet counted: whose, which child, its keys and arguments.

    `keys` and `args` are the budget script's (`CHARGE_DISTINCT`), encoded: the windows'
    keys, then the organisation's baseline key when `based`; the hashed child, then the
    charge's spec (its numbers packed in one argument, see `budget_scripts`).
    """

    subject: str
    organisation: str | None
    child: str
    request_id: str
    purpose: str | None
    now: float
    slots: tuple[Slot, ...]
    member: str
    keys: tuple[bytes, ...]
    args: tuple[str, bytes]

    @property
    def based(self) -> bool:
        """Whether the charge carries the organisation's baseline (its last key)."""
        return len(self.keys) > 3 * len(self.slots)


def limits_for(settings: BudgetSettings, roles: Iterable[str]) -> BudgetLimits:
    """The limits for a caller with `roles`: per window, the most generous configured role.

    Roles without configured limits are ignored; a caller with none gets the default.
    """
    chosen = [settings.roles[role] for role in roles if role in settings.roles]
    if not chosen:
        return settings.default
    return BudgetLimits(**{w.limit_field: max(w.limit(c) for c in chosen) for w in WINDOWS})


def warning_threshold(limit: int, ratio: float) -> int:
    """The count at which a window warns: `ratio` of `limit`, rounded up (at least 1)."""
    # Rounded first so that float noise (0.7 * 10 = 7.000000000000001) does not add one.
    return max(1, math.ceil(round(limit * ratio, 6)))


class Budgets:
    """Charges looked-up children against the caller's budgets; raises when one is spent.

    `redis` None counts in this process only (a single-process demo). Keys are
    `{key_prefix}b:{window tag}:{bucket}:{HMAC of subject or organisation}`, sets
    of HMACs of the (already pseudonymous) child, with `:warned` and `:exceeded` flags
    beside each (so each window warns, and alerts its refusal, once per bucket);
    the HMAC key is derived from `secret`.

    Alerts name the subject by `pseudonym` (pass the one the logs use, so the privacy
    officer can follow a subject from alert to log; the default derives one from
    `secret`). After a Redis failure, Redis is left alone for `retry_seconds`.
    """

    def __init__(self, settings: BudgetSettings, redis: aioredis.Redis | None, key_prefix: str,
                 secret: str, alerts: AlertSink, clock: Callable[[], float] = time.time, *,
                 pseudonym: Pseudonymiser | None = None, retry_seconds: float = 5.0) -> None:
        self._settings = settings
        self._redis = redis
        self._prefix = f"{key_prefix}b:"
        self._hash = KeyHasher(secret, "budget-keys")
        self._alerts = alerts
        self._clock = clock
        self._pseudonym = pseudonym or Pseudonymiser(secret)
        self._backoff = Backoff("budgets", retry_seconds, clock)
        state = settings.local_state_file
        self._local = LocalWindows(None if state is None else Path(state))
        self._script = redis.register_script(CHARGE_DISTINCT) if redis is not None else None
        self._limits: dict[frozenset[str], BudgetLimits] = {}
        self._prepared: dict[tuple[str, str | None, frozenset[str]],
                             tuple[int, tuple[Slot, ...], tuple[bytes, ...], bytes]] = {}

    @property
    def kind(self) -> str:
        """"redis" (shared by every process) or "memory" (this process only)."""
        return "memory" if self._redis is None else "redis"

    @property
    def status(self) -> str:
        """"degraded" while Redis is failing and budgets hold per process only, else "ok"."""
        return "degraded" if self._redis is not None and self._backoff.down else "ok"

    @property
    def shared(self) -> bool:
        """Whether a charge may be counted in Redis now, in one script call and nothing else.

        False inside a back-off period, and while counts made in this process wait to
        be written back (the next `charge` does that first).
        """
        return self._script is not None and not self._backoff.down and not self._local

    async def charge(self, *, subject: str, organisation: str | None, roles: frozenset[str],
                     child: str, request_id: str, purpose: str | None = None) -> Charge:
        """Count `child` (a keyed pseudonym) for `subject` and `organisation`.

        Raises `AccessBudgetExceededError` when the child is new to a window that is
        full; nothing is then counted anywhere. The first refusal of a window's bucket
        (per subject or organisation) alerts "budget_exceeded"; later ones do not.
        """
        pending = self.prepare(subject=subject, organisation=organisation, roles=roles,
                               child=child, request_id=request_id, purpose=purpose)
        return await self.settle(pending, await self.count(pending))

    def prepare(self, *, subject: str, organisation: str | None, roles: frozenset[str],
                child: str, request_id: str, purpose: str | None = None) -> PendingCharge:
        """The charge `charge` would make, worked out but not counted (see `settle`)."""
        now = self._clock()
        second = math.floor(now)
        owner = (subject, organisation, roles)
        made = self._prepared.get(owner)
        if made is None or made[0] != second:
            made = self._made(owner, now, second)
        _, slots, keys, spec = made
        member = self._hash("child", child)
        return PendingCharge(subject, organisation, child, request_id, purpose, now,
                             slots, member, keys, (member, spec))

    def _made(self, owner: tuple[str, str | None, frozenset[str]], now: float,
              second: int) -> tuple[int, tuple[Slot, ...], tuple[bytes, ...], bytes]:
        """An owner's slots, encoded keys and spec, the same for a whole second of `now`.

        Within one second every bucket, TTL and `ceil(ends_in)` is the same (buckets are
        whole seconds), so a charge's all but its child is remembered for that second
        (at most `REMEMBERED` owners; then the memory starts again).
        """
        subject, organisation, roles = owner
        limits = self._limits.get(roles)
        if limits is None:
            if len(self._limits) >= REMEMBERED:
                self._limits.clear()
            limits = self._limits[roles] = limits_for(self._settings, roles)
        slots = tuple(self._slots(subject, organisation, limits, now))
        keys = [k for s in slots for k in (s.key, f"{s.key}:warned", f"{s.key}:exceeded")]
        numbers: list[float | int] = [len(slots), 0]
        numbers += [v for s in slots for v in (s.limit, s.threshold, s.ttl)]
        if organisation is not None and len(slots) == len(WINDOWS):
            key, more = self._baseline_args(organisation, now)
            keys.append(key)
            numbers[1] = 1
            numbers += more
        made = (second, slots, tuple(k.encode() for k in keys),
                ",".join(map(repr, numbers)).encode())
        if len(self._prepared) >= REMEMBERED:
            self._prepared.clear()
        self._prepared[owner] = made
        return made

    def locally(self, pending: PendingCharge) -> Outcome:
        """Count `pending` in this process (Redis away): its share, or refuse if configured."""
        return self._locally(pending.slots, pending.member, pending.now)

    def failed(self, exc: BaseException) -> None:
        """Redis failed under a call that carried a charge: count here for a while."""
        self._backoff.failed(exc)

    def succeeded(self) -> None:
        self._backoff.succeeded()

    async def settle(self, pending: PendingCharge, outcome: Outcome) -> Charge:
        """What `outcome` (the counted `pending`) means: alerts, and the refusal's error."""
        slots, now, subject, organisation = (pending.slots, pending.now, pending.subject,
                                             pending.organisation)
        usage = {s.window.name: (used, s.limit)
                 for s, used in zip(slots, outcome.used, strict=True)}
        marked = [s for s, mark in zip(slots, outcome.marked, strict=True) if mark]
        if not marked and not outcome.unusual:
            return Charge(counted=any(outcome.added), usage=usage)
        facts = _AlertFacts(self._alerts, now, pending.request_id, self._pseudonym(subject),
                            organisation, pending.child, pending.purpose, usage)
        if outcome.unusual:
            await facts.emit("organisation_rate_unusual", ORGANISATION_HOUR,
                             baseline=round(outcome.baseline, 1),
                             ratio=self._settings.baseline_ratio)
        if not outcome.accepted:
            # One alert per window and owner per bucket: the refusals after it are
            # audited and counted, but would only repeat what the officer knows.
            first = [s for s, due in zip(slots, outcome.exceeded, strict=True) if due]
            if first:
                await facts.emit("budget_exceeded", first[0].window,
                                 full=",".join(s.window.name for s in marked))
            BUDGET_REFUSALS.labels(marked[0].window.name).inc()
            raise AccessBudgetExceededError(
                f"Access budget exceeded: distinct children {marked[0].window.description}.",
                budget=marked[0].window.name, retryAfter=math.ceil(marked[0].ends_in))
        for slot in marked:
            await facts.emit("budget_warning", slot.window)
        return Charge(counted=any(outcome.added), usage=usage)

    def _baseline_args(self, organisation: str, now: float) -> tuple[str, list[float | int]]:
        """The organisation's baseline key, and the script's arguments for it."""
        settings, hours = self._settings, self._settings.baseline_hours
        return (f"{self._prefix}ob:{self._hash('organisation', organisation)}",
                [int(now // 3_600), WINDOWS.index(ORGANISATION_HOUR) + 1,
                 settings.baseline_ratio, settings.baseline_floor, 2 / (hours + 1),
                 min(hours, _BASELINE_HOURS_BEFORE_ALERTING), hours * 3_600 * 2])

    def _slots(self, subject: str, organisation: str | None, limits: BudgetLimits,
               now: float) -> list[Slot]:
        owners = [(SUBJECT_HOUR, "subject", subject), (SUBJECT_DAY, "subject", subject)]
        if organisation is not None:
            owners += [(ORGANISATION_HOUR, "organisation", organisation),
                       (ORGANISATION_DAY, "organisation", organisation)]
        slots = []
        for window, kind, owner in owners:
            bucket = int(now // window.seconds)
            limit = window.limit(limits)
            slots.append(Slot(
                window=window, key=f"{self._prefix}{window.tag}:{bucket}:{self._hash(kind, owner)}",
                limit=limit, threshold=warning_threshold(limit, self._settings.alert_ratio),
                ends_in=(bucket + 1) * window.seconds - now))
        return slots

    def _locally(self, slots: Sequence[Slot], member: str, now: float) -> Outcome:
        """Count in this process: only its share of every limit, or refuse if configured."""
        if self._redis is not None and self._settings.when_redis_down == "refuse":
            raise BudgetsUnavailableError
        share = self._settings.processes
        if share > 1:
            slots = [replace(s, limit=max(1, s.limit // share),
                             threshold=warning_threshold(max(1, s.limit // share),
                                                         self._settings.alert_ratio))
                     for s in slots]
        return self._local.charge(slots, member, now)

    async def count(self, pending: PendingCharge) -> Outcome:
        """Count `pending` on its own: in Redis (writing back local counts first) or here."""
        if self._redis is None or self._script is None or self._backoff.down:
            return self.locally(pending)
        try:
            if self._local:
                await self._write_back(self._redis, pending.now)
            reply = await self._script(keys=list(pending.keys), args=list(pending.args))
        except REDIS_FAILURES as exc:
            self._backoff.failed(exc)
            return self.locally(pending)
        self._backoff.succeeded()
        return Outcome.from_reply(reply, len(pending.slots))

    async def _write_back(self, redis: aioredis.Redis, now: float) -> None:
        """Add what this process counted while Redis was away (no limit: it is history)."""
        sets, flags = self._local.drain(now)
        try:
            async with redis.pipeline(transaction=False) as pipe:
                # Queued, not sent: the pipeline's methods come back typed as awaitable.
                for key, (expires, members) in sets.items():
                    _ = pipe.sadd(key, *members)
                    _ = pipe.expire(key, max(1, math.ceil(expires - now)))
                for flag, expires in flags.items():
                    _ = pipe.set(flag, 1, nx=True, ex=max(1, math.ceil(expires - now)))
                await pipe.execute()
        except BaseException:
            self._local.restore(sets, flags)
            raise
        log.info("budgets: wrote back %d windows counted while Redis was away", len(sets))


@dataclass(frozen=True, slots=True)
class _AlertFacts:
    """What every alert from one charge shares; the subject is already a pseudonym."""

    sink: AlertSink
    now: float
    request_id: str
    subject: str
    organisation: str | None
    child: str
    purpose: str | None
    usage: dict[str, tuple[int, int]]

    async def emit(self, kind: AlertKind, window: Window, **more: str | float) -> None:
        used, limit = self.usage[window.name]
        detail: dict[str, str | int | float] = {"budget": window.name, "used": used, "limit": limit,
                                          **more}
        await self.sink.emit(Alert(
            kind=kind, at=dt.datetime.fromtimestamp(self.now, dt.UTC),
            request_id=self.request_id, subject=self.subject, organisation=self.organisation,
            child=self.child, purpose=self.purpose, detail=detail))
