"""`accessReport`: who looked at a child's record — for the child, a parent, or the DPO."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import strawberry

from gateway.accountability.disclosure import Entry, disclose
from gateway.accountability.notes import ChildAccess
from gateway.core.errors import BadUserInputError, ForbiddenError
from gateway.core.nhs import is_valid_nhs_number, normalise_nhs_number
from gateway.core.policy import FIELD_POLICY, Scope
from resolvers.descriptions import describe
from resolvers.enums import Purpose

if TYPE_CHECKING:
    from collections.abc import Iterable

    from resolvers.context import RequestContext

__all__ = ["AccessRecord", "access_report", "field_groups"]

_GROUPS = {
    Scope.IDENTITY: "identity", Scope.CONTACT: "contact", Scope.EDUCATION: "education",
    Scope.HEALTH: "health", Scope.SERVICES: "services", Scope.PROTECTION: "protection",
}
REPORT_LIMIT = 500
"""The most entries a report lists (the newest), counted after withholding."""
HISTORY_SCAN_LIMIT = 200_000
"""The most audit events read to fill a report: beyond it an older entry may be missing."""
_OFFICER_ONLY = (f"Only the data protection officer ({Scope.AUDIT_READ.value}) sees what the "
                 "subject was not shown.")


@strawberry.type(description="One release of a child's data: when, to which organisation, why, "
                 "and which groups of fields.")
class AccessRecord:
    at: dt.datetime = strawberry.field(description=describe("AccessRecord.at"))
    organisation: str | None = strawberry.field(description=describe("AccessRecord.organisation"))
    purpose: Purpose | None = strawberry.field(description=describe("AccessRecord.purpose"))
    fields: list[str] = strawberry.field(description=describe("AccessRecord.fields"))
    withheld: strawberry.Private[str | None]
    officer: strawberry.Private[bool]

    def _officer_only(self) -> None:
        """FORBIDDEN for anyone but the DPO, whatever the entry: the same answer whether or
        not anything was withheld, so asking cannot tip the subject off."""
        if not self.officer:
            raise ForbiddenError(_OFFICER_ONLY, scope=Scope.AUDIT_READ.value)

    @strawberry.field(description=describe("AccessRecord.withheldFromSubject"))
    def withheld_from_subject(self) -> bool | None:
        self._officer_only()
        return self.withheld is not None

    @strawberry.field(description=describe("AccessRecord.withheldReason"))
    def withheld_reason(self) -> str | None:
        self._officer_only()
        return self.withheld


def _purpose(recorded: str | None) -> Purpose | None:
    """The recorded purpose as the enum; None for none, or one this schema does not know.

    Every release names a `Purpose` value, but the log outlives any one version
    of the schema: a value it no longer holds must not fail the whole report.
    """
    return Purpose.__members__.get(recorded) if recorded is not None else None


def field_groups(keys: Iterable[str]) -> list[str]:
    """The groups a set of policy keys belongs to, in a fixed order."""
    groups = {_GROUPS[scope] for key in keys for scope in FIELD_POLICY[key].scopes[:1]
              if scope in _GROUPS}
    return [g for g in _GROUPS.values() if g in groups]


def _authorise(context: RequestContext, nhs_number: str) -> bool:
    """Whether the caller is the data protection officer; FORBIDDEN if it may not read."""
    caller = context.caller
    if Scope.AUDIT_READ in caller.scopes:
        return True
    own = caller.subject_nhs_number
    if Scope.SUBJECT_SELF in caller.scopes and own is not None and (
            normalise_nhs_number(own) == nhs_number):
        return False
    raise ForbiddenError(
        f"accessReport needs {Scope.AUDIT_READ.value}, or {Scope.SUBJECT_SELF.value} with a "
        "token naming this child.", scope=Scope.AUDIT_READ.value)


async def _entries(context: RequestContext, nhs_number: str, *, officer: bool) -> list[Entry]:
    """The newest `REPORT_LIMIT` entries the caller may see.

    Reads more of the log while too few are left after withholding (and reads of
    the report itself), so the subject's report reaches as far back as if the
    withheld releases had never happened.
    """
    access = context.services.subject_access
    now, limit, scan = access.now(), REPORT_LIMIT, REPORT_LIMIT
    while True:
        events = await context.services.access_history(nhs_number, scan)
        entries = disclose(events, subject=not officer, now=now, settings=access.settings,
                           limit=limit)
        if len(entries) >= limit or len(events) < scan or scan >= HISTORY_SCAN_LIMIT:
            return entries
        scan = min(scan * 4, HISTORY_SCAN_LIMIT)


async def access_report(context: RequestContext, nhs_number: str) -> list[AccessRecord]:
    """Releases of this child's data, newest first; the report itself is audited.

    A `subject.self` caller is not shown releases the disclosure rule withholds
    (`gateway.accountability.disclosure`); the DPO sees them, marked.
    """
    nhs = normalise_nhs_number(nhs_number)
    if not is_valid_nhs_number(nhs):
        raise BadUserInputError("nhsNumber must be 10 digits with a valid Modulus 11 check digit.",
                                field="nhsNumber")
    note = context.note(ChildAccess("access_report.read", None, None, nhs))
    try:
        officer = _authorise(context, nhs)
    except ForbiddenError:
        note.outcome = "refused"
        raise
    entries = await _entries(context, nhs, officer=officer)
    note.released.add("Query.accessReport")
    return [AccessRecord(at=e.event.at, organisation=e.event.organisation,
                         purpose=_purpose(e.event.purpose),
                         fields=field_groups(k for k in e.event.released if k in FIELD_POLICY),
                         withheld=e.withheld, officer=officer)
            for e in entries]
