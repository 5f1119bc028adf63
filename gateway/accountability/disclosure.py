"""Which releases a subject access report shows, so that it does not tip off an enquiry.

A parent reading "who looked at my child?" must not learn that a safeguarding
enquiry (perhaps into that parent) is under way. So a release under one of the
configured purposes (SAFEGUARDING by default) is withheld from a `subject.self`
report for a period after it was made, and for as long as its case is open where
the system holding the case says so. The data protection officer (`audit.read`)
sees every release, each marked with whether, and why, the subject was not shown it.

Pure: plain data in (events, who asks, the time, the settings, the open cases),
entries out; no I/O, no clock of its own. Withheld entries are dropped *before*
anything is counted or cut to a limit, so neither a report's length nor which
entries fall off its end depends on what was withheld.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.settings import SubjectAccessSettings

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable

    from gateway.accountability.audit import AuditEvent

__all__ = ["CASE_OPEN", "Entry", "SubjectAccess", "disclose", "is_release", "withheld_reason"]

CASE_OPEN = "case open"


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class SubjectAccess:
    """The rule's settings and the clock it is applied with (injected, for tests)."""

    settings: SubjectAccessSettings = field(default_factory=SubjectAccessSettings)
    now: Callable[[], dt.datetime] = _utc_now


@dataclass(frozen=True, slots=True)
class Entry:
    """One release in a report; `withheld` is why the subject is not shown it (None: shown)."""

    event: AuditEvent
    withheld: str | None


def is_release(event: AuditEvent) -> bool:
    """Whether the event released some of the child's data (what a report lists).

    Refusals, lookups that released nothing and reads of the report itself are
    not releases; they are dropped for every reader before anything else.
    """
    return (event.outcome == "released" and bool(event.released)
            and event.action != "access_report.read")


def withheld_reason(event: AuditEvent, now: dt.datetime, settings: SubjectAccessSettings,
                    open_cases: Collection[tuple[str | None, str]] = ()) -> str | None:
    """Why `event` is kept from the subject (None: it is shown).

    Withheld if its purpose is one of `withhold_purposes` and either it is
    younger than `withhold_days` (a release dated in the future, from a skewed
    clock, counts as young), or its (organisation, case reference) is among
    `open_cases`: the cases the systems holding them state are open.
    """
    if event.purpose not in settings.withhold_purposes:
        return None
    if now - event.at < dt.timedelta(days=settings.withhold_days):
        return f"{event.purpose} within {settings.withhold_days} days"
    if event.case_reference is not None and (event.organisation,
                                             event.case_reference) in open_cases:
        return CASE_OPEN
    return None


def disclose(events: Iterable[AuditEvent], *, subject: bool, now: dt.datetime,
             settings: SubjectAccessSettings, limit: int,
             open_cases: Collection[tuple[str | None, str]] = ()) -> list[Entry]:
    """The report's entries, in the order of `events` (newest first), at most `limit`.

    For the subject (`subject=True`) only the entries not withheld, the limit
    applied after withholding; for the data protection officer every release,
    each with its `withheld` reason.
    """
    entries = (Entry(e, withheld_reason(e, now, settings, open_cases))
               for e in events if is_release(e))
    kept = [e for e in entries if not (subject and e.withheld is not None)]
    return kept[:limit]
