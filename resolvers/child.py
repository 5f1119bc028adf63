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
from resolvers.types import (
    Address,
    Education,
    FieldProvenance,
    Organisation,
    PersonName,
    PrimaryCare,
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
    name: PersonName
    relationship: str | None
    phone: str | None
    sources: list[str] = strawberry.field(
        description="The systems that record this carer (a carer stated by several systems "
        "appears once).")
    _address: strawberry.Private[f.Address | None]
    _address_withheld: strawberry.Private[Withheld | None]
    _access: strawberry.Private[ChildAccess]

    @strawberry.field(description="Withheld (SHIELDED) when the child is shielded.")
    def address(self) -> Address | None:
        _release(self._access, "Carer.address", self._address_withheld)
        return Address.of(self._address)


@strawberry.type(description="A service involved with the child, from any system that records "
                 "services (the council, youth justice, ...).")
class Service:
    kind: str
    name: str
    sensitive: bool
    source: str | None = strawberry.field(
        description="The system this service came from (the first of `sources`).")
    sources: list[str] = strawberry.field(
        description="Every system that records this service (stated twice, it appears once).")
    _contact: strawberry.Private[str | None]
    _contact_withheld: strawberry.Private[Withheld | None]
    _access: strawberry.Private[ChildAccess]

    @strawberry.field(description="Withheld (SHIELDED) when the child is shielded.")
    def contact(self) -> str | None:
        _release(self._access, "Service.contact", self._contact_withheld)
        return self._contact


@strawberry.type(description="One child's record, assembled live from the local systems.")
class Child:
    id: strawberry.ID
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

    @strawberry.field
    def nhs_number(self) -> str | None:
        return self._guard("Child.nhsNumber").nhs_number

    @strawberry.field
    def name(self) -> PersonName | None:
        return PersonName.of(self._guard("Child.name").name)

    @strawberry.field
    def date_of_birth(self) -> dt.date | None:
        return self._guard("Child.dateOfBirth").date_of_birth

    @strawberry.field
    def gender(self) -> str | None:
        return self._guard("Child.gender").gender

    @strawberry.field(description="True if any system shields the child, or a system that "
                      "records shielding did not answer (fail closed).")
    def shielded(self) -> bool:
        self._guard("Child.shielded")
        return self._state.shielded

    @strawberry.field
    def address(self) -> Address | None:
        return Address.of(self._guard("Child.address").address)

    @strawberry.field(description="The union of every system's carers. Withheld in full "
                      "(SHIELDED) when the child is shielded: a carer's name or phone leads "
                      "to the child as surely as an address.")
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

    @strawberry.field
    def education(self) -> Education | None:
        school = self._guard("Child.education").school
        return None if school is None else Education(school=Organisation.of(school))

    @strawberry.field
    def primary_care(self) -> PrimaryCare | None:
        practice = self._guard("Child.primaryCare").practice
        return None if practice is None else PrimaryCare(practice=Organisation.of(practice))

    @strawberry.field(description="The union of every system's services. Sensitive services "
                      "appear only with recorded consent and the child.sensitive.read scope; "
                      "otherwise they are absent.")
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

    @strawberry.field
    def sources(self) -> list[SourceStatus]:
        self._guard("Child.sources")
        return [SourceStatus(connector=o.connector, status=o.status, from_cache=o.from_cache)
                for o in self._sources.bundle.outcomes]

    @strawberry.field(description="Where each released field's value came from: the system "
                      "(the fact's authority, or for a list every system contributing), "
                      "systems that state another value, and systems that did not answer. "
                      "Only fields released to the caller in this request are listed.")
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
