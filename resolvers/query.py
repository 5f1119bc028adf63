"""The root `Query`: `findChildren` and `child`."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import replace
from enum import Enum
from typing import TYPE_CHECKING

import strawberry
from strawberry.types import Info

from gateway.errors import (
    AccessBudgetExceededError,
    BadUserInputError,
    ForbiddenError,
    NotFoundError,
    UpstreamUnavailableError,
)
from gateway.policy import FIELD_POLICY, Access, decide, is_servable, scope_reason
from resolvers.accesses import ChildAccess
from resolvers.assembly import Assembled, assemble
from resolvers.child import Child
from resolvers.context import RequestContext
from resolvers.report import AccessRecord, access_report
from resolvers.search import ExactSearch, matches, parse_search
from resolvers.types import ChildMatch, PersonName

if TYPE_CHECKING:
    from gateway.policy import ChildState

__all__ = ["ChildSearch", "Purpose", "Query"]

MAX_MATCHES = 5
_MAX_CASE_REFERENCE = 64


@strawberry.enum(description="Why the caller is asking; every child query must name one.")
class Purpose(Enum):
    SAFEGUARDING = "SAFEGUARDING"
    EARLY_HELP = "EARLY_HELP"
    EDUCATION = "EDUCATION"
    HEALTH_CARE = "HEALTH_CARE"
    SOCIAL_CARE = "SOCIAL_CARE"
    YOUTH_JUSTICE = "YOUTH_JUSTICE"


@strawberry.input(description="Either nhsNumber, or familyName + dateOfBirth + "
                  "(givenName or postcode); all matched exactly.")
class ChildSearch:
    nhs_number: str | None = None
    family_name: str | None = None
    given_name: str | None = None
    date_of_birth: dt.date | None = None
    postcode: str | None = None


def _case_reference(raw: str | None) -> str | None:
    if raw is None:
        return None
    value = raw.strip()
    if len(value) > _MAX_CASE_REFERENCE or not value.isprintable():
        raise BadUserInputError(
            f"caseReference must be at most {_MAX_CASE_REFERENCE} printable characters.",
            field="caseReference")
    return value or None


def _servable(context: RequestContext, assembled: Assembled) -> ChildState | None:
    state = assembled.state
    if state is None or not is_servable(state.facts, context.services.today()):
        return None
    return state


async def _assemble(context: RequestContext, nhs_number: str) -> Assembled:
    return assemble(await context.load(nhs_number), context.services.traits)


async def _candidates(context: RequestContext, search: ExactSearch) -> list[str]:
    if search.nhs_number is not None:
        return [search.nhs_number]
    assert search.demographics is not None  # noqa: S101 -- parse_search guarantees one of the two
    outcome = await context.services.sources.search(search.demographics)
    if len(outcome.unavailable) == len(context.services.sources.connectors):
        raise UpstreamUnavailableError("No system holding children's records answered.")
    # Not cut to MAX_MATCHES here: people who may not be served (18+ without
    # consent) must not take the places of those who may; the per-request child
    # limit bounds the work.
    return list(outcome.nhs_numbers[:context.services.max_children_per_request])


def _access(context: RequestContext, purpose: Purpose, case_reference: str | None,
            root_field: str) -> Access:
    """The caller's access for this purpose; FORBIDDEN if the root field itself is not granted."""
    access = Access.of(context.caller.scopes, purpose.value, case_reference,
                       context.services.purposes)
    reason = scope_reason(FIELD_POLICY[root_field].scopes, access)
    if reason is not None:
        raise ForbiddenError(reason.message, **({"scope": reason.scope} if reason.scope else {}))
    return access


def _visible_match(search: ExactSearch, access: Access, state: ChildState) -> bool:
    """Whether the child matches on values this caller may see.

    A postcode the caller may not see (shielded child, or no contact scope) is
    never compared, so a search cannot confirm it: the child is then found
    only on the other attributes (NHS number, or family name + date of birth
    + given name).
    """
    criteria = search.demographics
    if criteria is None:
        return True
    if criteria.postcode and "Child.address" in decide(access, state).withheld:
        criteria = replace(criteria, postcode=None)
        if search.nhs_number is None and criteria.given_name is None:
            return False
        return matches(criteria, state.facts)
    return search.nhs_number is None or matches(criteria, state.facts)


_MATCH_FIELDS = frozenset({"ChildMatch.id", "ChildMatch.name", "ChildMatch.dateOfBirth"})


def _noted(context: RequestContext, action: str, purpose: Purpose,
           case_reference: str | None, nhs_number: str | None = None) -> ChildAccess:
    return context.note(ChildAccess(action, purpose.value, case_reference, nhs_number))


async def _charge(context: RequestContext, note: ChildAccess, nhs_number: str) -> None:
    """Count the child against the caller's budgets: looked up counts, matched or not."""
    try:
        await context.services.charge(context.caller, nhs_number, context.request_id)
    except AccessBudgetExceededError:
        note.outcome = "budget_exceeded"
        raise


async def find_children(context: RequestContext, search: ChildSearch, purpose: Purpose,
                        case_reference: str | None) -> list[ChildMatch]:
    try:
        access = _access(context, purpose, case_reference, "Query.findChildren")
    except ForbiddenError:
        _noted(context, "children.search", purpose, case_reference).outcome = "refused"
        raise
    exact = parse_search(search.nhs_number, search.family_name, search.given_name,
                         search.date_of_birth, search.postcode, context.services.today())
    candidates = await _candidates(context, exact)
    if not candidates:
        _noted(context, "children.search", purpose, case_reference).outcome = "not_found"
    notes = [_noted(context, "children.search", purpose, case_reference, nhs)
             for nhs in candidates]
    try:
        for nhs, note in zip(candidates, notes, strict=True):
            await _charge(context, note, nhs)
    except AccessBudgetExceededError:
        for note in notes:
            note.outcome = "budget_exceeded"
        raise
    assembled_all = await asyncio.gather(*(_assemble(context, nhs) for nhs in candidates))
    found: list[ChildMatch] = []
    for nhs, note, assembled in zip(candidates, notes, assembled_all, strict=True):
        note.sources = tuple(o.connector for o in (await context.load(nhs)).outcomes)
        if assembled.status == "unavailable" and exact.nhs_number is not None:
            note.outcome = "upstream_unavailable"
            raise UpstreamUnavailableError("No system holding children's records answered.")
        state = _servable(context, assembled)
        if state is None or not _visible_match(exact, access, state) or len(found) == MAX_MATCHES:
            note.outcome = "not_found"
            continue
        note.released.update(_MATCH_FIELDS)
        note.shielded = state.shielded
        found.append(ChildMatch(
            id=strawberry.ID(context.services.ids.encode(nhs, context.caller.client_id)),
            name=PersonName.of(state.facts.name), date_of_birth=state.facts.date_of_birth))
    return found


async def find_child(context: RequestContext, child_id: str, purpose: Purpose,
                     case_reference: str | None) -> Child:
    nhs = context.services.ids.decode(child_id, context.caller.client_id)
    note = _noted(context, "child.read", purpose, case_reference, nhs)
    try:
        access = _access(context, purpose, case_reference, "Query.child")
    except ForbiddenError:
        note.outcome = "refused"
        raise
    if nhs is None:
        note.outcome = "not_found"
        raise NotFoundError
    await _charge(context, note, nhs)
    bundle = await context.load(nhs)
    note.sources = tuple(o.connector for o in bundle.outcomes)
    assembled = assemble(bundle, context.services.traits)
    if assembled.status == "unavailable":
        note.outcome = "upstream_unavailable"
        raise UpstreamUnavailableError("No system holding children's records answered.")
    state = _servable(context, assembled)
    if state is None:
        note.outcome = "not_found"
        raise NotFoundError
    note.shielded = state.shielded
    return Child(id=strawberry.ID(child_id), _state=state, _decision=decide(access, state),
                 _bundle=bundle, _access=note)


@strawberry.type
class Query:
    @strawberry.field(description="Find children by NHS number or exact demographics; at most "
                      "5 matches. Needs child.identity.read.")
    async def find_children(self, info: Info[RequestContext, None], search: ChildSearch,
                            purpose: Purpose, case_reference: str | None = None,
                            ) -> list[ChildMatch]:
        return await find_children(info.context, search, purpose,
                                   _case_reference(case_reference))

    @strawberry.field(description="Who looked at this child's record: organisation, purpose, time "
                      "and groups of fields. Needs audit.read, or subject.self with a token "
                      "naming the child.")
    async def access_report(self, info: Info[RequestContext, None],
                            nhs_number: str) -> list[AccessRecord]:
        return await access_report(info.context, nhs_number)

    @strawberry.field(description="One child's record, by an id from findChildren.")
    async def child(self, info: Info[RequestContext, None], id: strawberry.ID,
                    purpose: Purpose, case_reference: str | None = None) -> Child | None:
        return await find_child(info.context, str(id), purpose, _case_reference(case_reference))
