"""Budget windows, one charge's slots in them, and the in-process stand-in for Redis.

`LocalWindows` keeps the same sets, flags and rules as the Redis script while
Redis is away. With a `state_file` it persists them (HMACs only: no subject,
organisation or child in clear) after every change, so a restarted process
does not start with a fresh budget.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.core.records import fast_init

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from gateway.settings import BudgetLimits

__all__ = ["GRACE_SECONDS", "ORGANISATION_DAY", "ORGANISATION_HOUR", "SUBJECT_DAY",
           "SUBJECT_HOUR", "WINDOWS", "LocalWindows", "Outcome", "Slot", "Window"]

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
ORGANISATION_HOUR = Window("organisation_hour", "oh", 3_600, "organisation_per_hour",
                           "per organisation per hour")
ORGANISATION_DAY = Window("organisation_day", "od", 86_400, "organisation_per_day",
                          "per organisation per day")
WINDOWS = (SUBJECT_HOUR, SUBJECT_DAY, ORGANISATION_HOUR, ORGANISATION_DAY)


@dataclass(frozen=True, slots=True)
class Slot:
    """One window as applied to one charge: its Redis key, limit and timing."""

    window: Window
    key: str
    limit: int
    threshold: int
    ends_in: float

    @property
    def ttl(self) -> int:
        return math.ceil(self.ends_in) + GRACE_SECONDS


@fast_init
@dataclass(frozen=True, slots=True)
class Outcome:
    accepted: bool
    used: tuple[int, ...]
    added: tuple[bool, ...]
    marked: tuple[bool, ...]
    unusual: bool = False
    """The organisation's hourly count first departed from its baseline with this charge."""
    baseline: float = 0.0
    """The organisation's baseline (mean distinct children in its earlier active hours)."""
    exceeded: tuple[bool, ...] = ()
    """Refused: the full windows refused for the first time in their bucket (these alert)."""

    @classmethod
    def from_reply(cls, reply: Sequence[Any], windows: int) -> Outcome:
        values = [int(v) for v in reply]
        end = 1 + 3 * windows
        extra = values[end:end + 2]
        return cls(accepted=values[0] == 1, used=tuple(values[1:end:3]),
                   added=tuple(v == 1 for v in values[2:end:3]),
                   marked=tuple(v >= 1 for v in values[3:end:3]),
                   unusual=bool(extra) and extra[0] == 1,
                   baseline=extra[1] / 100 if extra else 0.0,
                   exceeded=tuple(v == 2 for v in values[3:end:3]))


class LocalWindows:
    """The in-process stand-in for Redis: the same sets, flags and rules as the script.

    With `state_file`, every change is written there (atomically: a temporary file,
    fsync, rename; mode 0600) and read back at start, so a restart keeps the counts.
    Changes happen only while Redis is away, so the small synchronous write costs
    nothing in normal service.
    """

    def __init__(self, state_file: Path | None = None) -> None:
        self._sets: dict[str, tuple[float, set[str]]] = {}
        self._flags: dict[str, float] = {}
        self._next_prune = 0.0
        self._file = state_file
        if state_file is not None:
            self._load(state_file)

    def _load(self, path: Path) -> None:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            sets = {key: (float(expires), {str(m) for m in members})
                    for key, (expires, members) in raw["sets"].items()}
            flags = {key: float(expires) for key, expires in raw["flags"].items()}
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("budgets: local state %s unreadable (%s); starting empty",
                        path.name, type(exc).__name__)
            return
        self._sets, self._flags = sets, flags

    def _save(self) -> None:
        if self._file is None:
            return
        body = json.dumps({"sets": {k: [e, sorted(m)] for k, (e, m) in self._sets.items()},
                           "flags": self._flags}, separators=(",", ":"))
        fd, temporary = tempfile.mkstemp(dir=self._file.parent, prefix=".budgets-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self._file)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def __bool__(self) -> bool:
        return bool(self._sets)

    def charge(self, slots: Sequence[Slot], member: str, now: float) -> Outcome:
        self._prune(now)
        sets = [self._sets.get(s.key, (0.0, set()))[1] for s in slots]
        fresh = [member not in members for members in sets]
        used = [len(members) for members in sets]
        full = [f and u + 1 > s.limit for f, u, s in zip(fresh, used, slots, strict=True)]
        if any(full):
            return self._refuse(slots, used, full, now)
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
        if any(fresh) or any(marked):
            self._save()
        return Outcome(True, tuple(len(m) for m in sets), tuple(fresh), tuple(marked))

    def _refuse(self, slots: Sequence[Slot], used: list[int], full: list[bool],
                now: float) -> Outcome:
        """A refusal: each full window's "exceeded" flag is set once per bucket."""
        first = []
        for slot, is_full in zip(slots, full, strict=True):
            flag = f"{slot.key}:exceeded"
            due = is_full and flag not in self._flags
            if due:
                self._flags[flag] = now + slot.ttl
            first.append(due)
        if any(first):
            self._save()
        return Outcome(False, tuple(used), (False,) * len(slots), tuple(full),
                       exceeded=tuple(first))

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
        self._save()
        return drained

    def restore(self, sets: dict[str, tuple[float, set[str]]], flags: dict[str, float]) -> None:
        for key, (expires, members) in sets.items():
            mine = self._sets.setdefault(key, (expires, set()))
            mine[1].update(members)
        for flag, expires in flags.items():
            self._flags.setdefault(flag, expires)
        self._save()


