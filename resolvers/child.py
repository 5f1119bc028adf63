"""The `Child` type: every guarded field reads the decision made once for this child."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import strawberry

from gateway.accountability.notes import ChildAccess
from gateway.core import facts as f
from gateway.core.errors import FieldWithheldError
from gateway.core.policy import FIELD_OF_FACT, ChildState, Decision, Withheld
from gateway.lookup.sources import ChildSources
from resolvers.descriptions import describe
from resolvers.enums import SourceState
from resolvers.types import (
    Address,
    Education,
    FieldProvenance,
    Organisation,
    PersonName,
    PrimaryCare,
    ProtectionStatus,
    SourceStatus,
)

if TYPE_CHECKING:
    from gateway.lookup.pipeline import ChildRelease

__all__ = ["Carer", "Child", "Service"]


def _release(access: ChildAccess, key: str, reason: Withheld | None) -> None:
    """Note the field as released, or note why not and raise its error."""
    if reason is None:
        access.note_released(key)
        return
    access.note_withheld(key, reason.code)
    extra = {} if reason.scope is None else {"scope": reason.scope}
    raise FieldWithheldError(reason.code, reason.message, **extra)


def _named(sources: tuple[str, ...], unnamed: frozenset[str]) -> list[str]:
    return [s for s in sources if s not in unnamed]


@strawberry.type(description="A parent or other carer, as the systems record them.")
class Carer:
    name: PersonName = strawberry.field(description=describe("Carer.name"))
    relationship: str | None = strawberry.field(description=describe("Carer.relationship"))
    phone: str | None = strawberry.field(description=describe("Carer.phone"))
    sources: list[str] = strawberry.field(description=describe("Carer.sources"))
    _address: strawberry.Private[f.Address | None]
    _address_withheld: strawberry.Private[Withheld | None]
    _access: strawberry.Private[ChildAccess]

    @strawberry.field(description=describe("Carer.address"))
    def address(self) -> Address | None:
        _release(self._access, "Carer.address", self._address_withheld)
        return Address.of(self._address)


@strawberry.type(description="A service involved with the child, from any system that records "
                 "services (the council, youth justice, ...).")
class Service:
    kind: str = strawberry.field(description=describe("Service.kind"))
    name: str = strawberry.field(description=describe("Service.name"))
    sensitive: bool = strawberry.field(description=describe("Service.sensitive"))
    source: str | None = strawberry.field(description=describe("Service.source"))
    sources: list[str] = strawberry.field(description=describe("Service.sources"))
    _contact: strawberry.Private[str | None]
    _contact_withheld: strawberry.Private[Withheld | None]
    _access: strawberry.Private[ChildAccess]

    @strawberry.field(description=describe("Service.contact"))
    def contact(self) -> str | None:
        _release(self._access, "Service.contact", self._contact_withheld)
        return self._contact


@strawberry.type(description="One child's record, assembled live from the local systems.")
class Child:
    id: strawberry.ID = strawberry.field(description=describe("Child.id"))
    _state: strawberry.Private[ChildState]
    _decision: strawberry.Private[Decision]
    _sources: strawberry.Private[ChildSources]
    _access: strawberry.Private[ChildAccess]

    @classmethod
    def of(cls, release: ChildRelease) -> Child:
        return cls(id=strawberry.ID(release.id), _state=release.state,
                   _decision=release.decision, _sources=release.sources, _access=release.note)

    def _guard(self, key: str) -> f.SourceFacts:
        _release(self._access, key, self._decision.withheld.get(key))
        return self._state.facts

    @strawberry.field(description=describe("Child.nhsNumber"))
    def nhs_number(self) -> str | None:
        return self._guard("Child.nhsNumber").nhs_number

    @strawberry.field(description=describe("Child.name"))
    def name(self) -> PersonName | None:
        return PersonName.of(self._guard("Child.name").name)

    @strawberry.field(description=describe("Child.dateOfBirth"))
    def date_of_birth(self) -> dt.date | None:
        return self._guard("Child.dateOfBirth").date_of_birth

    @strawberry.field(description=describe("Child.gender"))
    def gender(self) -> str | None:
        return self._guard("Child.gender").gender

    @strawberry.field(description=describe("Child.shielded"))
    def shielded(self) -> bool:
        self._guard("Child.shielded")
        return self._state.shielded

    @strawberry.field(description=describe("Child.address"))
    def address(self) -> Address | None:
        return Address.of(self._guard("Child.address").address)

    @strawberry.field(description=describe("Child.carers"))
    def carers(self) -> list[Carer] | None:
        carers = self._guard("Child.carers").carers
        if carers is None:
            return None
        withheld = self._decision.withheld.get("Carer.address")
        unnamed = self._decision.unnamed
        return [Carer(name=PersonName(given=list(c.name.given), family=c.name.family),
                      relationship=c.relationship, phone=c.phone,
                      sources=_named(c.sources, unnamed), _address=c.address,
                      _address_withheld=withheld, _access=self._access)
                for c in carers]

    @strawberry.field(description=describe("Child.education"))
    def education(self) -> Education | None:
        school = self._guard("Child.education").school
        return None if school is None else Education(school=Organisation.of(school))

    @strawberry.field(description=describe("Child.primaryCare"))
    def primary_care(self) -> PrimaryCare | None:
        practice = self._guard("Child.primaryCare").practice
        return None if practice is None else PrimaryCare(practice=Organisation.of(practice))

    @strawberry.field(description=describe("Child.services"))
    def services(self) -> list[Service] | None:
        self._guard("Child.services")
        if self._decision.services is None:
            return None
        withheld = self._decision.withheld.get("Service.contact")
        if any(s.sensitive for s in self._decision.services):
            self._access.sensitive_released = True
        return [Service(kind=s.kind, name=s.name, sensitive=s.sensitive,
                        source=s.sources[0] if s.sources else None, sources=list(s.sources),
                        _contact=s.contact, _contact_withheld=withheld, _access=self._access)
                for s in self._decision.services]

    @strawberry.field(description=describe("Child.protection"))
    def protection(self) -> ProtectionStatus | None:
        return ProtectionStatus.of(self._guard("Child.protection").protection)

    @strawberry.field(description=describe("Child.sources"))
    def sources(self) -> list[SourceStatus]:
        self._guard("Child.sources")
        return [SourceStatus(connector=o.connector, status=SourceState(o.status),
                             from_cache=o.from_cache)
                for o in self._sources.bundle.outcomes]

    @strawberry.field(description=describe("Child.provenance"))
    def provenance(self) -> list[FieldProvenance]:
        self._guard("Child.provenance")
        decision, unnamed = self._decision, self._decision.unnamed
        entries = []
        for fact, where in self._state.provenance.items():
            field = FIELD_OF_FACT[fact]
            if f"Child.{field}" in decision.withheld:
                continue
            sources = where.sources
            if fact in decision.items:
                visible = decision.items[fact] or ()
                sources = tuple(dict.fromkeys(s for item in visible for s in item.sources))
            entries.append(FieldProvenance(
                field=field, sources=_named(sources, unnamed),
                disagreeing=_named(where.disagreeing, unnamed),
                unavailable=list(where.unavailable)))
        return entries
