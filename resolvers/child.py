"""The `Child` type: every guarded field reads the decision made once for this child."""

from __future__ import annotations

import datetime as dt

import strawberry

from connectors import facts as f
from gateway.errors import FieldWithheldError
from gateway.policy import ChildState, Decision, Withheld
from gateway.sources import SourceBundle
from resolvers.accesses import ChildAccess
from resolvers.types import Address, Education, Organisation, PersonName, PrimaryCare, SourceStatus

__all__ = ["Carer", "Child", "Service"]


def _release(access: ChildAccess, key: str, reason: Withheld | None) -> None:
    """Note the field as released, or note why not and raise its error."""
    if reason is None:
        access.note_released(key)
        return
    access.note_withheld(key, reason.code)
    extra = {} if reason.scope is None else {"scope": reason.scope}
    raise FieldWithheldError(reason.code, reason.message, **extra)


@strawberry.type(description="A parent or other carer, as the school records them.")
class Carer:
    name: PersonName
    relationship: str | None
    phone: str | None
    _address: strawberry.Private[f.Address | None]
    _address_withheld: strawberry.Private[Withheld | None]
    _access: strawberry.Private[ChildAccess]

    @strawberry.field(description="Withheld (SHIELDED) when the child is shielded.")
    def address(self) -> Address | None:
        _release(self._access, "Carer.address", self._address_withheld)
        return Address.of(self._address)


@strawberry.type(description="A service involved with the child, from the council system.")
class Service:
    kind: str
    name: str
    sensitive: bool
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
    _bundle: strawberry.Private[SourceBundle]
    _access: strawberry.Private[ChildAccess]

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

    @strawberry.field(description="True if any system shields the child, or the system that "
                      "records shielding did not answer (fail closed).")
    def shielded(self) -> bool:
        self._guard("Child.shielded")
        return self._state.shielded

    @strawberry.field
    def address(self) -> Address | None:
        return Address.of(self._guard("Child.address").address)

    @strawberry.field
    def carers(self) -> list[Carer] | None:
        carers = self._guard("Child.carers").carers
        if carers is None:
            return None
        withheld = self._decision.withheld.get("Carer.address")
        return [Carer(name=PersonName(given=list(c.name.given), family=c.name.family),
                      relationship=c.relationship, phone=c.phone,
                      _address=c.address, _address_withheld=withheld, _access=self._access)
                for c in carers]

    @strawberry.field
    def education(self) -> Education | None:
        school = self._guard("Child.education").school
        return None if school is None else Education(school=Organisation.of(school))

    @strawberry.field
    def primary_care(self) -> PrimaryCare | None:
        practice = self._guard("Child.primaryCare").practice
        return None if practice is None else PrimaryCare(practice=Organisation.of(practice))

    @strawberry.field(description="Sensitive services appear only with recorded consent and "
                      "the child.sensitive.read scope; otherwise they are absent.")
    def services(self) -> list[Service] | None:
        self._guard("Child.services")
        if self._decision.services is None:
            return None
        withheld = self._decision.withheld.get("Service.contact")
        if any(s.sensitive for s in self._decision.services):
            self._access.sensitive_released = True
        return [Service(kind=s.kind, name=s.name, sensitive=s.sensitive, _contact=s.contact,
                        _contact_withheld=withheld, _access=self._access)
                for s in self._decision.services]

    @strawberry.field
    def sources(self) -> list[SourceStatus]:
        self._guard("Child.sources")
        return [SourceStatus(connector=o.connector, status=o.status, from_cache=o.from_cache)
                for o in self._bundle.outcomes]
