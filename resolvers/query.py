"""The root `Query`: `findChildren` and `child`."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import TYPE_CHECKING

import strawberry
from strawberry.types import Info

from gateway.lookup.search import SearchTerms
from resolvers.child import Child
from resolvers.context import RequestContext
from resolvers.report import AccessRecord, access_report
from resolvers.types import ChildMatch, PersonName

if TYPE_CHECKING:
    from gateway.lookup.pipeline import Match

__all__ = ["ChildSearch", "Purpose", "Query"]


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


def _matches(matches: list[Match]) -> list[ChildMatch]:
    return [ChildMatch(id=strawberry.ID(m.id), name=PersonName.of(m.state.facts.name),
                       date_of_birth=m.state.facts.date_of_birth) for m in matches]


@strawberry.type
class Query:
    @strawberry.field(description="Find children by NHS number or exact demographics; at most "
                      "5 matches. Needs child.identity.read.")
    async def find_children(self, info: Info[RequestContext, None], search: ChildSearch,
                            purpose: Purpose, case_reference: str | None = None,
                            ) -> list[ChildMatch]:
        terms = SearchTerms(search.nhs_number, search.family_name, search.given_name,
                            search.date_of_birth, search.postcode)
        lookup = info.context.lookup
        return _matches(await lookup.find(terms, purpose.value,
                                          lookup.case_reference(case_reference)))

    @strawberry.field(description="Who looked at this child's record: organisation, purpose, time "
                      "and groups of fields. Needs audit.read, or subject.self with a token "
                      "naming the child.")
    async def access_report(self, info: Info[RequestContext, None],
                            nhs_number: str) -> list[AccessRecord]:
        return await access_report(info.context, nhs_number)

    @strawberry.field(description="One child's record, by an id from findChildren.")
    async def child(self, info: Info[RequestContext, None], id: strawberry.ID,
                    purpose: Purpose, case_reference: str | None = None) -> Child | None:
        lookup = info.context.lookup
        release = await lookup.child(str(id), purpose.value,
                                     lookup.case_reference(case_reference))
        return Child.of(release)
