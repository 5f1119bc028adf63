"""The one lookup pipeline: every rule of a child lookup, in order, in one place.

    decode id -> purpose and scope -> charge budget -> load sources -> merge once
    -> servable (18+ rule) -> decide -> note for the audit log

Resolvers call `Lookup.child` and `Lookup.find` and only shape the answer;
they never re-derive a decision. One `Lookup` serves one request: it owns the
request's DataLoader (each child fetched at most once), its audit notes and
the systems in service when it began (`sources`: a connector registered,
replaced or removed meanwhile changes the next request, never this one).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from strawberry.dataloader import DataLoader

from gateway.accountability.disclosure import SubjectAccess
from gateway.accountability.notes import ChildAccess
from gateway.core.case_reference import CaseReferenceRule
from gateway.core.errors import (
    AccessBudgetExceededError,
    BudgetsUnavailableError,
    ForbiddenError,
    NotFoundError,
    QueryTooComplexError,
    UpstreamUnavailableError,
)
from gateway.core.policy import FIELD_POLICY, Access, decide, is_servable, scope_reason
from gateway.lookup.search import matches

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable, Mapping, Sequence

    from gateway.accountability.audit import AuditEvent
    from gateway.core.caller import Caller
    from gateway.core.merge import Merged
    from gateway.core.policy import ChildState, Decision, Scope
    from gateway.crypto.ids import ChildIdCodec
    from gateway.lookup.challenges import Challenges
    from gateway.lookup.search import ExactSearch, SearchTerms
    from gateway.lookup.sources import ChildSources, SourceProvider, Sources

__all__ = ["MAX_MATCHES", "AccessHistory", "BudgetCharger", "ChildRelease", "Lookup",
           "LookupServices", "Match"]

MAX_MATCHES = 5
_MATCH_FIELDS = frozenset({"ChildMatch.id", "ChildMatch.name", "ChildMatch.dateOfBirth"})
_NO_SYSTEM = "No system holding children's records answered."


class BudgetCharger(Protocol):
    """Counts a looked-up child against the caller's harvesting budgets."""

    async def __call__(self, caller: Caller, nhs_number: str, request_id: str) -> None:
        """Raises AccessBudgetExceededError when this child would exceed a budget."""
        ...


class AccessHistory(Protocol):
    """The audit log's releases of one child's data, newest first."""

    async def __call__(self, nhs_number: str, limit: int) -> Sequence[AuditEvent]: ...


@dataclass(frozen=True, slots=True)
class LookupServices:
    """The long-lived collaborators of every lookup, owned by the app's lifespan."""

    sources: SourceProvider
    ids: ChildIdCodec
    today: Callable[[], dt.date]
    max_children_per_request: int
    purposes: Mapping[str, frozenset[Scope]]
    charge: BudgetCharger
    access_history: AccessHistory
    case_references: CaseReferenceRule = field(default_factory=CaseReferenceRule)
    subject_access: SubjectAccess = field(default_factory=SubjectAccess)
    """What `accessReport` keeps from a `subject.self` caller, and the clock it uses."""
    challenges: Challenges | None = None
    """Challenges to released values (None: the gateway takes none, as in unit tests)."""


@dataclass(frozen=True, slots=True)
class ChildRelease:
    """A child the caller may be answered about: its state, the decision, the audit note."""

    id: str
    state: ChildState
    decision: Decision
    sources: ChildSources
    note: ChildAccess


@dataclass(frozen=True, slots=True)
class Match:
    """One `findChildren` match: a client-bound id and the identity the caller may see."""

    id: str
    state: ChildState


@dataclass
class Lookup:
    """The lookups of one request (see the module docstring for the order of the rules)."""

    services: LookupServices
    caller: Caller
    request_id: str
    notes: list[ChildAccess] = field(default_factory=list)
    sources: Sources = field(init=False)
    _children: set[str] = field(default_factory=set)
    _loader: DataLoader[str, ChildSources] = field(init=False)

    def __post_init__(self) -> None:
        self.sources = self.services.sources.take()
        self._loader = DataLoader(load_fn=self.sources.load)

    def case_reference(self, raw: str | None) -> str | None:
        """The caller's case reference if it is one (BAD_USER_INPUT, nothing noted, if not)."""
        return self.services.case_references.check(raw)

    def note(self, access: ChildAccess) -> ChildAccess:
        """Keep `access` for this request's audit events; returns it for filling in."""
        self.notes.append(access)
        return access

    def access(self, purpose: str, case_ref: str | None, root_field: str) -> Access:
        """The caller's access for this purpose; FORBIDDEN if `root_field` is not granted."""
        access = Access.of(self.caller.scopes, purpose, case_ref, self.services.purposes)
        reason = scope_reason(FIELD_POLICY[root_field].scopes, access)
        if reason is not None:
            raise ForbiddenError(reason.message,
                                 **({"scope": reason.scope} if reason.scope else {}))
        return access

    async def load(self, nhs_number: str) -> ChildSources:
        """The child's sources, fetched at most once per request however often asked for."""
        if nhs_number not in self._children:
            if len(self._children) >= self.services.max_children_per_request:
                raise QueryTooComplexError(
                    f"A request may look up at most {self.services.max_children_per_request}"
                    " children.")
            self._children.add(nhs_number)
        return await self._loader.load(nhs_number)

    async def _charge(self, note: ChildAccess, nhs_number: str) -> None:
        """Count the child against the caller's budgets: looked up counts, matched or not."""
        try:
            await self.services.charge(self.caller, nhs_number, self.request_id)
        except AccessBudgetExceededError:
            note.outcome = "budget_exceeded"
            raise
        except BudgetsUnavailableError:
            note.outcome = "refused"  # budgets could not be counted: nothing is looked up
            raise

    def _servable(self, merged: Merged) -> ChildState | None:
        state = merged.state
        if state is None or not is_servable(state.facts, self.services.today()):
            return None
        return state

    async def child(self, child_id: str, purpose: str, case_ref: str | None) -> ChildRelease:
        """One child by a client-bound id, decided and noted; raises the refusal's error."""
        nhs = self.services.ids.decode(child_id, self.caller.client_id)
        note = self.note(ChildAccess("child.read", purpose, case_ref, nhs))
        try:
            access = self.access(purpose, case_ref, "Query.child")
        except ForbiddenError:
            note.outcome = "refused"
            raise
        if nhs is None:
            note.outcome = "not_found"
            raise NotFoundError
        await self._charge(note, nhs)
        sources = await self.load(nhs)
        note.sources = tuple(o.connector for o in sources.bundle.outcomes)
        if sources.merged.status == "unavailable":
            note.outcome = "upstream_unavailable"
            raise UpstreamUnavailableError(_NO_SYSTEM)
        state = self._servable(sources.merged)
        if state is None:
            note.outcome = "not_found"
            raise NotFoundError
        note.shielded = state.shielded
        note.protection = state.facts.protection
        return ChildRelease(child_id, state, decide(access, state), sources, note)

    async def find(self, terms: SearchTerms, purpose: str,
                   case_ref: str | None) -> list[Match]:
        """At most `MAX_MATCHES` children matching exactly on values the caller may see."""
        try:
            access = self.access(purpose, case_ref, "Query.findChildren")
        except ForbiddenError:
            self.note(ChildAccess("children.search", purpose, case_ref)).outcome = "refused"
            raise
        search = terms.parse(self.services.today())
        candidates = await self._candidates(search)
        if not candidates:
            self.note(ChildAccess("children.search", purpose, case_ref)).outcome = "not_found"
        notes = [self.note(ChildAccess("children.search", purpose, case_ref, nhs))
                 for nhs in candidates]
        try:
            for nhs, note in zip(candidates, notes, strict=True):
                await self._charge(note, nhs)
        except (AccessBudgetExceededError, BudgetsUnavailableError) as exc:
            for note in notes:
                note.outcome = ("budget_exceeded" if isinstance(exc, AccessBudgetExceededError)
                                else "refused")
            raise
        loaded = await asyncio.gather(*(self.load(nhs) for nhs in candidates))
        found: list[Match] = []
        for nhs, note, sources in zip(candidates, notes, loaded, strict=True):
            note.sources = tuple(o.connector for o in sources.bundle.outcomes)
            if sources.merged.status == "unavailable" and search.nhs_number is not None:
                note.outcome = "upstream_unavailable"
                raise UpstreamUnavailableError(_NO_SYSTEM)
            state = self._servable(sources.merged)
            if (state is None or not _visible_match(search, access, state)
                    or len(found) == MAX_MATCHES):
                note.outcome = "not_found"
                continue
            note.released.update(_MATCH_FIELDS)
            note.shielded = state.shielded
            found.append(Match(self.services.ids.encode(nhs, self.caller.client_id), state))
        return found

    async def _candidates(self, search: ExactSearch) -> list[str]:
        if search.nhs_number is not None:
            return [search.nhs_number]
        assert search.demographics is not None  # noqa: S101 -- parse_search ensures one of two
        sources = self.sources
        outcome = await sources.search(search.demographics)
        if len(outcome.unavailable) == len(sources.connectors):
            raise UpstreamUnavailableError(_NO_SYSTEM)
        # Not cut to MAX_MATCHES here: people who may not be served (18+ without
        # consent) must not take the places of those who may; the per-request child
        # limit bounds the work.
        return list(outcome.nhs_numbers[:self.services.max_children_per_request])


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
