"""The root `Mutation` (`challenge`) and the `Challenge` type `Query.challenge` also answers."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from gateway.core.errors import NotFoundError
from resolvers import descriptions as d
from resolvers.context import RequestContext
from resolvers.enums import Purpose

if TYPE_CHECKING:
    from gateway.lookup.challenges import Challenges

__all__ = ["Challenge", "ChallengeState", "Mutation", "challenge_state"]


@strawberry.enum(description="How far a challenge has got.")
class ChallengeState(Enum):
    PENDING = strawberry.enum_value(
        "PENDING", description="Accepted by the gateway and kept until the system that "
        "supplied the value acknowledges it (retried while that system is down).")
    ACKNOWLEDGED = strawberry.enum_value(
        "ACKNOWLEDGED", description="The system that supplied the value has received it.")
    RESOLVED = strawberry.enum_value(
        "RESOLVED", description="That system says it has dealt with the challenge.")


@strawberry.type(description="A challenge to one value of a child's record, sent to the system "
                 "that supplied the value. The gateway keeps neither the value nor the reason.")
class Challenge:
    id: strawberry.ID = strawberry.field(description=d.describe("Challenge.id"))
    state: ChallengeState = strawberry.field(description=d.describe("Challenge.state"))
    system: str = strawberry.field(description=d.describe("Challenge.system"))
    contact: str | None = strawberry.field(description=d.describe("Challenge.contact"))
    sent_at: dt.datetime | None = strawberry.field(description=d.describe("Challenge.sentAt"))
    acknowledged_at: dt.datetime | None = strawberry.field(
        description=d.describe("Challenge.acknowledgedAt"))
    resolved_at: dt.datetime | None = strawberry.field(
        description=d.describe("Challenge.resolvedAt"))


def _challenges(context: RequestContext) -> Challenges:
    challenges = context.services.challenges
    if challenges is None:
        raise NotFoundError
    return challenges


async def challenge_state(context: RequestContext, challenge_id: str) -> Challenge:
    """`Query.challenge`: the state of one of the caller's own challenges."""
    found = await _challenges(context).state(context.caller, challenge_id)
    return Challenge(id=strawberry.ID(found.id), state=ChallengeState[found.state],
                     system=found.system, contact=found.contact, sent_at=found.sent_at,
                     acknowledged_at=found.acknowledged_at, resolved_at=found.resolved_at)


@strawberry.type(description="Changes: challenging a released value of a child.")
class Mutation:
    @strawberry.field(description=d.describe("Mutation.challenge"))
    async def challenge(
            self, info: Info[RequestContext, None],
            purpose: Annotated[Purpose, strawberry.argument(
                description="The purpose under which the value was released to the caller.")],
            field: Annotated[str, strawberry.argument(
                description="The value challenged, as a path: \"Child.address\", "
                "\"Child.education.school.name\", \"Child.services[0]\".")],
            reason: Annotated[str, strawberry.argument(
                description="What is believed wrong (at most 2,000 characters). Sent to the "
                "system only; never stored by the gateway nor written to its audit log.")],
            child_id: Annotated[strawberry.ID | None, strawberry.argument(
                description=d.CHILD_ID + " Or give nhsNumber instead (subject.self only).")]
            = None,
            reference: Annotated[str | None, strawberry.argument(
                description="A reference of the caller's own, passed to the system.")] = None,
            nhs_number: Annotated[str | None, strawberry.argument(
                description="Instead of childId, for the child or a parent (`subject.self`): "
                "the child's NHS number, which must be the one the token names.")] = None,
            ) -> Challenge:
        context = info.context
        made = await _challenges(context).make(
            context.lookup, None if child_id is None else str(child_id), purpose.name, field,
            reason, reference, nhs_number)
        return Challenge(id=strawberry.ID(made.id), state=ChallengeState[made.state],
                         system=made.system, contact=made.contact, sent_at=None,
                         acknowledged_at=None, resolved_at=None)
