"""`accessReport`: who looked at a child's record — for the child, a parent, or the DPO."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import strawberry

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
    Scope.HEALTH: "health", Scope.SERVICES: "services",
}
REPORT_LIMIT = 500


@strawberry.type(description="One release of a child's data: when, to which organisation, why, "
                 "and which groups of fields.")
class AccessRecord:
    at: dt.datetime = strawberry.field(description=describe("AccessRecord.at"))
    organisation: str | None = strawberry.field(description=describe("AccessRecord.organisation"))
    purpose: Purpose | None = strawberry.field(description=describe("AccessRecord.purpose"))
    fields: list[str] = strawberry.field(description=describe("AccessRecord.fields"))


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


def _authorise(context: RequestContext, nhs_number: str) -> None:
    caller = context.caller
    if Scope.AUDIT_READ in caller.scopes:
        return
    own = caller.subject_nhs_number
    if Scope.SUBJECT_SELF in caller.scopes and own is not None and (
            normalise_nhs_number(own) == nhs_number):
        return
    raise ForbiddenError(
        f"accessReport needs {Scope.AUDIT_READ.value}, or {Scope.SUBJECT_SELF.value} with a "
        "token naming this child.", scope=Scope.AUDIT_READ.value)


async def access_report(context: RequestContext, nhs_number: str) -> list[AccessRecord]:
    """Releases of this child's data, newest first; the report itself is audited."""
    nhs = normalise_nhs_number(nhs_number)
    if not is_valid_nhs_number(nhs):
        raise BadUserInputError("nhsNumber must be 10 digits with a valid Modulus 11 check digit.",
                                field="nhsNumber")
    note = context.note(ChildAccess("access_report.read", None, None, nhs))
    try:
        _authorise(context, nhs)
    except ForbiddenError:
        note.outcome = "refused"
        raise
    events = await context.services.access_history(nhs, REPORT_LIMIT)
    note.released.add("Query.accessReport")
    return [AccessRecord(at=e.at, organisation=e.organisation, purpose=_purpose(e.purpose),
                         fields=field_groups(k for k in e.released if k in FIELD_POLICY))
            for e in events
            if e.outcome == "released" and e.released and e.action != "access_report.read"]
