"""The root `Query`: `findChildren`, `child` and `accessReport`."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from gateway.lookup.search import SearchTerms
from resolvers import descriptions as d
from resolvers.child import Child
from resolvers.context import RequestContext
from resolvers.enums import Purpose
from resolvers.mutation import Challenge, challenge_state
from resolvers.report import AccessRecord, access_report
from resolvers.types import ChildMatch, PersonName

if TYPE_CHECKING:
    from gateway.lookup.pipeline import Match

__all__ = ["ChildSearch", "Purpose", "Query"]


@strawberry.input(description="Either nhsNumber, or familyName + dateOfBirth + "
                  "(givenName or postcode); all matched exactly.")
class ChildSearch:
    nhs_number: str | None = strawberry.field(
        default=None, description="10 digits (spaces and hyphens ignored) with a valid Modulus "
        "11 check digit: a search on its own; any other attribute given must match too.")
    family_name: str | None = strawberry.field(
        default=None, description="Family name: spaces collapsed and case ignored, otherwise "
        "exact.")
    given_name: str | None = strawberry.field(
        default=None, description="A given name, compared as familyName is.")
    date_of_birth: dt.date | None = strawberry.field(
        default=None, description="Date of birth, not in the future.")
    postcode: str | None = strawberry.field(default=None, description=d.SEARCH_POSTCODE)


_Purpose = Annotated[Purpose, strawberry.argument(description=d.PURPOSE)]
_CaseReference = Annotated[str | None, strawberry.argument(description=d.CASE_REFERENCE)]


def _matches(matches: list[Match]) -> list[ChildMatch]:
    return [ChildMatch(id=strawberry.ID(m.id), name=PersonName.of(m.state.facts.name),
                       date_of_birth=m.state.facts.date_of_birth) for m in matches]


@strawberry.type(description="The entry points: find a child, read a child's record, and "
                 "see who has read it. Every child query names a purpose.")
class Query:
    @strawberry.field(description=d.describe("Query.findChildren"))
    async def find_children(
            self, info: Info[RequestContext, None],
            search: Annotated[ChildSearch, strawberry.argument(description=d.SEARCH)],
            purpose: _Purpose, case_reference: _CaseReference = None) -> list[ChildMatch]:
        terms = SearchTerms(search.nhs_number, search.family_name, search.given_name,
                            search.date_of_birth, search.postcode)
        lookup = info.context.lookup
        return _matches(await lookup.find(terms, purpose.name,
                                          lookup.case_reference(case_reference)))

    @strawberry.field(description=d.describe("Query.accessReport"))
    async def access_report(
            self, info: Info[RequestContext, None],
            nhs_number: Annotated[str, strawberry.argument(description=d.NHS_NUMBER)],
            ) -> list[AccessRecord]:
        return await access_report(info.context, nhs_number)

    @strawberry.field(description=d.describe("Query.challenge"))
    async def challenge(
            self, info: Info[RequestContext, None],
            id: Annotated[strawberry.ID, strawberry.argument(
                description="The id `Mutation.challenge` answered.")]) -> Challenge:
        return await challenge_state(info.context, str(id))

    @strawberry.field(description=d.describe("Query.child"))
    async def child(
            self, info: Info[RequestContext, None],
            id: Annotated[strawberry.ID, strawberry.argument(description=d.CHILD_ID)],
            purpose: _Purpose, case_reference: _CaseReference = None) -> Child | None:
        lookup = info.context.lookup
        release = await lookup.child(str(id), purpose.name,
                                     lookup.case_reference(case_reference))
        return Child.of(release)
