"""Plain output types of the public schema, built from source facts."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import strawberry

from resolvers.descriptions import describe
from resolvers.enums import SourceState

if TYPE_CHECKING:
    from gateway.core import facts as f

__all__ = [
    "Address",
    "ChildMatch",
    "Education",
    "FieldProvenance",
    "Organisation",
    "PersonName",
    "PrimaryCare",
    "ProtectionStatus",
    "SourceStatus",
]


@strawberry.type(description="A person's name as the source system records it.")
class PersonName:
    given: list[str] = strawberry.field(description=describe("PersonName.given"))
    family: str = strawberry.field(description=describe("PersonName.family"))

    @classmethod
    def of(cls, name: f.PersonName | None) -> PersonName | None:
        return None if name is None else cls(given=list(name.given), family=name.family)


@strawberry.type(description="A postal address.")
class Address:
    lines: list[str] = strawberry.field(description=describe("Address.lines"))
    postcode: str | None = strawberry.field(description=describe("Address.postcode"))

    @classmethod
    def of(cls, address: f.Address | None) -> Address | None:
        if address is None:
            return None
        return cls(lines=list(address.lines), postcode=address.postcode)


@strawberry.type(description="A school or GP practice.")
class Organisation:
    name: str = strawberry.field(description=describe("Organisation.name"))
    code: str | None = strawberry.field(description=describe("Organisation.code"))
    phone: str | None = strawberry.field(description=describe("Organisation.phone"))
    address: Address | None = strawberry.field(description=describe("Organisation.address"))

    @classmethod
    def of(cls, org: f.Organisation) -> Organisation:
        return cls(name=org.name, code=org.code, phone=org.phone, address=Address.of(org.address))


@strawberry.type(description="School enrolment, from the school system.")
class Education:
    school: Organisation = strawberry.field(description=describe("Education.school"))


@strawberry.type(description="GP registration, from the GP system.")
class PrimaryCare:
    practice: Organisation = strawberry.field(description=describe("PrimaryCare.practice"))


@strawberry.type(description="Child protection: a plan, being looked after, the responsible "
                 "authority.")
class ProtectionStatus:
    child_protection_plan: bool = strawberry.field(
        description=describe("ProtectionStatus.childProtectionPlan"))
    looked_after: bool = strawberry.field(description=describe("ProtectionStatus.lookedAfter"))
    responsible_authority: str | None = strawberry.field(
        description=describe("ProtectionStatus.responsibleAuthority"))

    @classmethod
    def of(cls, status: f.ProtectionStatus | None) -> ProtectionStatus | None:
        if status is None:
            return None
        return cls(child_protection_plan=status.child_protection_plan,
                   looked_after=status.looked_after,
                   responsible_authority=status.responsible_authority)


@strawberry.type(description="Whether one source system answered for this child, and how.")
class SourceStatus:
    connector: str = strawberry.field(description=describe("SourceStatus.connector"))
    status: SourceState = strawberry.field(description=describe("SourceStatus.status"))
    from_cache: bool = strawberry.field(description=describe("SourceStatus.fromCache"))


@strawberry.type(description="Where one released field of a child came from.")
class FieldProvenance:
    field: str = strawberry.field(description=describe("FieldProvenance.field"))
    sources: list[str] = strawberry.field(description=describe("FieldProvenance.sources"))
    disagreeing: list[str] = strawberry.field(
        description=describe("FieldProvenance.disagreeing"))
    unavailable: list[str] = strawberry.field(
        description=describe("FieldProvenance.unavailable"))


@strawberry.type(description="A child found by `findChildren`; use `id` with `child`.")
class ChildMatch:
    id: strawberry.ID = strawberry.field(description=describe("ChildMatch.id"))
    name: PersonName | None = strawberry.field(description=describe("ChildMatch.name"))
    date_of_birth: dt.date | None = strawberry.field(
        description=describe("ChildMatch.dateOfBirth"))
