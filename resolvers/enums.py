"""The closed value sets of the public schema: `Purpose` and `SourceState`."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

import strawberry

from resolvers.descriptions import purpose_value

if TYPE_CHECKING:
    from strawberry.types.enum import EnumValueDefinition

__all__ = ["Purpose", "SourceState"]


def _purpose(name: str, what: str) -> EnumValueDefinition:
    return strawberry.enum_value(name, description=f"{what} {purpose_value(name)}")


@strawberry.enum(description="Why the caller is asking; every child query must name one. The "
                 "purpose limits the scopes a request may use and is written to the audit log.")
class Purpose(Enum):
    """A member's `name` is its GraphQL value and what the lookup and the audit log record."""

    SAFEGUARDING = _purpose("SAFEGUARDING", "Protecting a child from harm.")
    EARLY_HELP = _purpose("EARLY_HELP", "Early help for a child and family, before statutory "
                          "involvement.")
    EDUCATION = _purpose("EDUCATION", "A child's education: enrolment, attendance, support.")
    HEALTH_CARE = _purpose("HEALTH_CARE", "A child's health care.")
    SOCIAL_CARE = _purpose("SOCIAL_CARE", "Children's social care.")
    YOUTH_JUSTICE = _purpose("YOUTH_JUSTICE", "Youth justice work with a young person.")


@strawberry.enum(graphql_name_from="value",
                 description="Whether a source system answered. The values are lower case, as "
                 "the wire has always carried them.")
class SourceState(Enum):
    OK = strawberry.enum_value(
        "ok", description="The system answered, whether or not it knows the child.")
    UNAVAILABLE = strawberry.enum_value(
        "unavailable", description="The system did not answer (down, slow or garbled): the "
        "fields only it can state are `UPSTREAM_UNAVAILABLE`.")
