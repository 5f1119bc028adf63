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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.alerts import Alert, AlertKind
from gateway.core.errors import AccessBudgetExceededError
from gateway.crypto.pseudonyms import Pseudonymiser
from gateway.limits.budget_scripts import CHARGE_DISTINCT
from gateway.limits.counters import REDIS_FAILURES, Backoff, KeyHasher
from gateway.settings import BudgetLimits

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    import redis.asyncio as aioredis

    from gateway.alerts import AlertSink
    from gateway.settings import BudgetSettings

__all__ = ["WINDOWS", "Budgets", "Charge", "Window", "limits_for", "warning_threshold"]

log = logging.getLogger(__name__)

GRACE_SECONDS = 300
"""How long a window's keys outlive its bucket: covers clock skew between processes."""


@dataclass(frozen=True, slots=True)
class Window:
    """One kind of budget: whose children it counts, over which calendar bucket."""

    name: str
    tag: str
    seconds: int
    limit_field: str
    description: str

    def limit(self, limits: BudgetLimits) -> int:
        return int(getattr(limits, self.limit_field))


SUBJECT_HOUR = Window("subject_hour", "sh", 3_600, "subject_per_hour", "per subject per hour")
SUBJECT_DAY = Window("subject_day", "sd", 86_400, "subject_per_day", "per subject per day")
ORGANISATION_DAY = Window("organisation_day", "od", 86_400, "organisation_per_day",
                          "per organisation per day")
WINDOWS = (SUBJECT_HOUR, SUBJECT_DAY, ORGANISATION_DAY)


@dataclass(frozen=True, slots=True)
class Charge:
    """What one charge did."""

    counted: bool
    """False if this child was already counted in every window (the charge was free)."""
    usage: dict[str, tuple[int, int]]
    """Window name -> (used, limit) after the charge, e.g. {"subject_hour": (7, 20)}."""


def limits_for(settings: BudgetSettings, roles: Iterable[str]) -> BudgetLimits:
    """The limits for a caller with `roles`: per window, the most generous configured role.

    Roles without configured limits are ignored; a caller with none gets the default.
    """
    chosen = [settings.roles[role] for role in roles if role in settings.roles]
    if not chosen:
        return settings.default
    return BudgetLimits(subject_per_hour=max(c.subject_per_hour for c in chosen),
                        subject_per_day=max(c.subject_per_day for c in chosen),
                        organisation_per_day=max(c.organisation_per_day for c in chosen))


def warning_threshold(limit: int, ratio: float) -> int:
    """The count at which a window warns: `ratio` of `limit`, rounded up (at least 1)."""
    # Rounded first so that float noise (0.7 * 10 = 7.000000000000001) does not add one.
    return max(1, math.ceil(round(limit * ratio, 6)))


@dataclass(frozen=True, slots=True)
class _Slot:
    """One window as applied to one charge: its Redis key, limit and timing."""

    window: Window
    key: str
    limit: int
    threshold: int
    ends_in: float

    @property
    def ttl(self) -> int:
        return math.ceil(self.ends_in) + GRACE_SECONDS


@dataclass(frozen=True, slots=True)
class _Outcome:
    accepted: bool
    used: tuple[int, ...]
    added: tuple[bool, ...]
    marked: tuple[bool, ...]

    @classmethod
    def from_reply(cls, reply: Sequence[Any]) -> _Outcome:
        values = [int(v) for v in reply]
        return cls(accepted=values[0] == 1, used=tuple(values[1::3]),
                   added=tuple(v == 1 for v in values[2::3]),
                   marked=tuple(v == 1 for v in values[3::3]))


class _LocalWindows:
    """The in-process stand-in for Redis: the same sets, flags and rules as the script."""

    def __init__(self) -> None:
        self._sets: dict[str, tuple[float, set[str]]] = {}
        self._flags: dict[str, float] = {}
        self._next_prune = 0.0

    def __bool__(self) -> bool:
        return bool(self._sets)

    def charge(self, slots: Sequence[_Slot], member: str, now: float) -> _Outcome:
        self._prune(now)
        sets = [self._sets.get(s.key, (0.0, set()))[1] for s in slots]
        fresh = [member not in members for members in sets]
        used = [len(members) for members in sets]
        full = [f and u + 1 > s.limit for f, u, s in zip(fresh, used, slots, strict=True)]
        if any(full):
            return _Outcome(False, tuple(used), (False,) * len(slots), tuple(full))
        marked = []
        for slot, is_fresh, members in zip(slots, fresh, sets, strict=True):
            if is_fresh:
                members.add(member)
                self._sets[slot.key] = (now + slot.ttl, members)
            flag = f"{slot.key}:warned"
            due = is_fresh and len(members) >= slot.threshold and flag not in self._flags
            if due:
                self._flags[flag] = now + slot.ttl
            marked.append(due)
        return _Outcome(True, tuple(len(m) for m in sets), tuple(fresh), tuple(marked))

    def _prune(self, now: float) -> None:
        if now < self._next_prune:
            return
        self._next_prune = now + 60
        self._sets = {k: v for k, v in self._sets.items() if v[0] > now}
        self._flags = {k: v for k, v in self._flags.items() if v > now}

    def drain(self, now: float) -> tuple[dict[str, tuple[float, set[str]]], dict[str, float]]:
        """Hand over (and forget) everything still live, to be written back to Redis."""
        self._next_prune = 0.0
        self._prune(now)
        drained = self._sets, self._flags
        self._sets, self._flags = {}, {}
        return drained

    def restore(self, sets: dict[str, tuple[float, set[str]]], flags: dict[str, float]) -> None:
        for key, (expires, members) in sets.items():
            mine = self._sets.setdefault(key, (expires, set()))
            mine[1].update(members)
        for flag, expires in flags.items():
            self._flags.setdefault(flag, expires)


class Budgets:
    """Charges looked-up children against the caller's budgets; raises when one is spent.

    `redis` None counts in this process only (a single-process demo). Keys are
    `{key_prefix}b:{window tag}:{bucket}:{HMAC of subject or organisation}`, sets
    of HMACs of the (already pseudonymous) child, with a `:warned` flag beside each;
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
        self._local = _LocalWindows()
        self._script = redis.register_script(CHARGE_DISTINCT) if redis is not None else None

    @property
    def kind(self) -> str:
        """"redis" (shared by every process) or "memory" (this process only)."""
        return "memory" if self._redis is None else "redis"

    @property
    def status(self) -> str:
        """"degraded" while Redis is failing and budgets hold per process only, else "ok"."""
        return "degraded" if self._redis is not None and self._backoff.down else "ok"

    async def charge(self, *, subject: str, organisation: str | None, roles: frozenset[str],
                     child: str, request_id: str, purpose: str | None = None) -> Charge:
        """Count `child` (a keyed pseudonym) for `subject` and `organisation`.

        Raises `AccessBudgetExceededError` (after a "budget_exceeded" alert) when the
        child is new to a window that is full; nothing is then counted anywhere.
        """
        now = self._clock()
        slots = self._slots(subject, organisation, limits_for(self._settings, roles), now)
        outcome = await self._count(slots, self._hash("child", child), now)
        usage = {s.window.name: (used, s.limit)
                 for s, used in zip(slots, outcome.used, strict=True)}
        marked = [s for s, mark in zip(slots, outcome.marked, strict=True) if mark]
        if not marked:
            return Charge(counted=any(outcome.added), usage=usage)
        facts = _AlertFacts(self._alerts, now, request_id, self._pseudonym(subject),
                            organisation, child, purpose, usage)
        if not outcome.accepted:
            await facts.emit("budget_exceeded", marked[0].window,
                             full=",".join(s.window.name for s in marked))
            raise AccessBudgetExceededError(
                f"Access budget exceeded: distinct children {marked[0].window.description}.",
                budget=marked[0].window.name, retryAfter=math.ceil(marked[0].ends_in))
        for slot in marked:
            await facts.emit("budget_warning", slot.window)
        return Charge(counted=any(outcome.added), usage=usage)

    def _slots(self, subject: str, organisation: str | None, limits: BudgetLimits,
               now: float) -> list[_Slot]:
        owners = [(SUBJECT_HOUR, "subject", subject), (SUBJECT_DAY, "subject", subject)]
        if organisation is not None:
            owners.append((ORGANISATION_DAY, "organisation", organisation))
        slots = []
        for window, kind, owner in owners:
            bucket = int(now // window.seconds)
            limit = window.limit(limits)
            slots.append(_Slot(
                window=window, key=f"{self._prefix}{window.tag}:{bucket}:{self._hash(kind, owner)}",
                limit=limit, threshold=warning_threshold(limit, self._settings.alert_ratio),
                ends_in=(bucket + 1) * window.seconds - now))
        return slots

    async def _count(self, slots: Sequence[_Slot], member: str, now: float) -> _Outcome:
        if self._redis is None or self._script is None or self._backoff.down:
            return self._local.charge(slots, member, now)
        try:
            if self._local:
                await self._write_back(self._redis, now)
            reply = await self._script(
                keys=[k for s in slots for k in (s.key, f"{s.key}:warned")],
                args=[member, *(v for s in slots for v in (s.limit, s.threshold, s.ttl))])
        except REDIS_FAILURES as exc:
            self._backoff.failed(exc)
            return self._local.charge(slots, member, now)
        self._backoff.succeeded()
        return _Outcome.from_reply(reply)

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

    async def emit(self, kind: AlertKind, window: Window, full: str | None = None) -> None:
        used, limit = self.usage[window.name]
        detail: dict[str, str | int] = {"budget": window.name, "used": used, "limit": limit}
        if full is not None:
            detail["full"] = full
        await self.sink.emit(Alert(
            kind=kind, at=dt.datetime.fromtimestamp(self.now, dt.UTC),
            request_id=self.request_id, subject=self.subject, organisation=self.organisation,
            child=self.child, purpose=self.purpose, detail=detail))
