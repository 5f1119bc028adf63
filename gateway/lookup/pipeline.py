"""The one lookup pipeline: every rule of a child lookup, in order, in one place.

    decode id -> purpose and scope -> charge budget -> load sources -> merge once
    -> servable (18+ rule) -> decide -> note for the audit log

Resolvers call `Lookup.child` and `Lookup.find` and only shape the answer;
they never re-derive a decision. One `Lookup` serves one request: it owns the
request's DataLoader (each child fetched at most once, those asked for together in one
batch), its audit notes and the systems in service when it began (`sources`: a
connector registered, replaced or removed meanwhile changes the next request,
never this one).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol, cast

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
from gateway.core.records import fast_init
from gateway.lookup.search import matches
from gateway.telemetry.upstream import cache_span

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable, Mapping, Sequence

    from gateway.accountability.audit import AuditEvent
    from gateway.core.caller import Caller
    from gateway.core.merge import Merged
    from gateway.core.policy import ChildState, Decision, Scope
    from gateway.crypto.ids import ChildIdCodec
    from gateway.lookup.admission import Admission, Gate
    from gateway.lookup.challenges import Challenges, ChallengeState, Made
    from gateway.lookup.search import ExactSearch, SearchTerms
    from gateway.lookup.sources import ChildSources, SourceProvider, Sources

__all__ = ["MAX_MATCHES", "AccessHistory", "ChildRelease", "Lookup", "LookupServices", "Match"]

MAX_MATCHES = 5
_MATCH_FIELDS = frozenset({"ChildMatch.id", "ChildMatch.name", "ChildMatch.dateOfBirth"})
_NO_SYSTEM = "No system holding children's records answered."


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
    gate: Gate
    """Admits the request, charges its children and reads their cache entries: one round trip."""
    access_history: AccessHistory
    case_references: CaseReferenceRule = field(default_factory=CaseReferenceRule)
    subject_access: SubjectAccess = field(default_factory=SubjectAccess)
    """What `accessReport` keeps from a `subject.self` caller, and the clock it uses."""
    challenges: Challenges | None = None
    """Challenges to released values (None: the gateway takes none, as in unit tests)."""


@fast_init
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
    admission: Admission | None = None
    """What the request owes before any work (see `gateway.lookup.admission`); None: nothing."""
    notes: list[ChildAccess] = field(default_factory=list)
    sources: Sources = field(init=False)
    _children: set[str] = field(default_factory=set)
    _loader: DataLoader[str, ChildSources] = field(init=False)
    """Each child fetched at most once per request; loads asked for together, together."""

    def __post_init__(self) -> None:
        self.sources = self.services.sources.take()
        self._loader = DataLoader(load_fn=self.sources.load)

    @functools.cached_property
    def guarded(self) -> LookupServices:
        """`services` as the resolvers use them: their other I/O (the audit log's history,
        challenges) waits for the request's admission too. Made when first asked for."""
        services = self.services
        if self.admission is None:
            return services
        challenges = services.challenges
        return replace(
            services, access_history=_AdmittedHistory(self, services.access_history),
            # Only `make` and `state` are the resolvers' (a cast, not a second Protocol).
            challenges=None if challenges is None
            else cast("Challenges", _AdmittedChallenges(self, challenges)))

    async def admitted(self) -> None:
        """Make the request's admission now if no round trip has carried it yet.

        Raises its refusal (`RateLimitedError`, or `DpopProofRejectedError` for a
        replayed proof); once decided, costs nothing.
        """
        if self.admission is not None and not self.admission.settled:
            await self.services.gate.first(self.admission, self.caller, (), self.request_id, ())
        elif self.admission is not None and self.admission.refusal is not None:
            raise self.admission.refusal

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
        await self.admitted()
        if nhs_number not in self._children:
            if len(self._children) >= self.services.max_children_per_request:
                raise QueryTooComplexError(
                    f"A request may look up at most {self.services.max_children_per_request}"
                    " children.")
            self._children.add(nhs_number)
        return await self._loader.load(nhs_number)

    async def _charge(self, notes: Sequence[ChildAccess], nhs_numbers: Sequence[str]) -> None:
        """Count the children against the caller's budgets: looked up counts, matched or not.

        One round trip: it carries the request's admission if still owed, and reads
        the cache entries of the children not loaded yet (for `load`).
        """
        sources = self.sources
        reads = sources.cache_keys([n for n in nhs_numbers if n not in self._children])
        try:
            with cache_span(len(reads)) if reads else contextlib.nullcontext():
                values = await self.services.gate.first(self.admission, self.caller,
                                                        nhs_numbers, self.request_id, reads)
        except AccessBudgetExceededError:
            for note in notes:
                note.outcome = "budget_exceeded"
            raise
        except BudgetsUnavailableError:
            for note in notes:
                note.outcome = "refused"  # budgets could not be counted: nothing is looked up
            raise
        if values is not None:
            sources.prime(reads, values)

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
        await self._charge((note,), (nhs,))
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
        if candidates:
            await self._charge(notes, candidates)
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
        await self.admitted()  # before the systems are asked anything
        sources = self.sources
        outcome = await sources.search(search.demographics)
        if len(outcome.unavailable) == len(sources.connectors):
            raise UpstreamUnavailableError(_NO_SYSTEM)
        # Not cut to MAX_MATCHES here: people who may not be served (18+ without
        # consent) must not take the places of those who may; the per-request child
        # limit bounds the work.
        return list(outcome.nhs_numbers[:self.services.max_children_per_request])


@dataclass(frozen=True, slots=True)
class _AdmittedHistory:
    """The audit log's history, read only once the request is admitted."""

    lookup: Lookup
    history: AccessHistory

    async def __call__(self, nhs_number: str, limit: int) -> Sequence[AuditEvent]:
        await self.lookup.admitted()
        return await self.history(nhs_number, limit)


class _AdmittedChallenges:
    """`Challenges` as the resolvers use them, each call made only once the request is admitted."""

    def __init__(self, lookup: Lookup, challenges: Challenges) -> None:
        self._lookup = lookup
        self._challenges = challenges

    async def make(self, lookup: Lookup, child_id: str | None, purpose: str, path: str,
                   reason: str, reference: str | None, nhs_number: str | None = None) -> Made:
        await self._lookup.admitted()
        return await self._challenges.make(lookup, child_id, purpose, path, reason, reference,
                                           nhs_number)

    async def state(self, caller: Caller, challenge_id: str) -> ChallengeState:
        await self._lookup.admitted()
        return await self._challenges.state(caller, challenge_id)


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
