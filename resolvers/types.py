"""Plain output types of the public schema, built from source facts."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import strawberry

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
    "SourceStatus",
]


@strawberry.type(description="A person's name as the source system records it.")
class PersonName:
    given: list[str]
    family: str

    @classmethod
    def of(cls, name: f.PersonName | None) -> PersonName | None:
        return None if name is None else cls(given=list(name.given), family=name.family)


@strawberry.type(description="A postal address.")
class Address:
    lines: list[str]
    postcode: str | None

    @classmethod
    def of(cls, address: f.Address | None) -> Address | None:
        if address is None:
            return None
        return cls(lines=list(address.lines), postcode=address.postcode)


@strawberry.type(description="A school or GP practice.")
class Organisation:
    name: str
    code: str | None
    phone: str | None
    address: Address | None

    @classmethod
    def of(cls, org: f.Organisation) -> Organisation:
        return cls(name=org.name, code=org.code, phone=org.phone, address=Address.of(org.address))


@strawberry.type(description="School enrolment, from the school system.")
class Education:
    school: Organisation


@strawberry.type(description="GP registration, from the GP system.")
class PrimaryCare:
    practice: Organisation


@strawberry.type(description="Whether one source system answered for this child, and how.")
class SourceStatus:
    connector: str
    status: str = strawberry.field(
        description='"ok" when the system answered (whether or not it knows the child), '
        '"unavailable" when it did not.')
    from_cache: bool


@strawberry.type(description="Where one released field of a child came from.")
class FieldProvenance:
    field: str = strawberry.field(description="The Child field, e.g. \"address\".")
    sources: list[str] = strawberry.field(
        description="The systems whose value it holds (for a list, every system with items).")
    disagreeing: list[str] = strawberry.field(
        description="Systems that state another value (single-valued fields).")
    unavailable: list[str] = strawberry.field(
        description="Systems able to state it that did not answer: a list may be incomplete.")


@strawberry.type(description="A child found by `findChildren`; use `id` with `child`.")
class ChildMatch:
    id: strawberry.ID
    name: PersonName | None
    date_of_birth: dt.date | None
