"""The policy table: for each guarded field, the scope it needs and whether it reveals location.

This table is the reviewable statement of the rules; `decide` only applies it.
Keys are `Type.field` as in the public schema. `source_fields` names the
`SourceFacts` attributes the value is built from, so a source that failed to
answer can be blamed on exactly the fields it would have supplied.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["FIELD_POLICY", "FieldRule", "Scope"]


class Scope(StrEnum):
    IDENTITY = "child.identity.read"
    CONTACT = "child.contact.read"
    EDUCATION = "child.education.read"
    HEALTH = "child.health.read"
    SERVICES = "child.services.read"
    SENSITIVE = "child.sensitive.read"
    SHIELDED = "child.shielded.read"


@dataclass(frozen=True, slots=True)
class FieldRule:
    scope: Scope
    reveals_location: bool = False
    source_fields: tuple[str, ...] = ()


FIELD_POLICY: dict[str, FieldRule] = {
    "Child.nhsNumber": FieldRule(Scope.IDENTITY),
    "Child.name": FieldRule(Scope.IDENTITY, source_fields=("name",)),
    "Child.dateOfBirth": FieldRule(Scope.IDENTITY, source_fields=("date_of_birth",)),
    "Child.gender": FieldRule(Scope.IDENTITY, source_fields=("gender",)),
    "Child.shielded": FieldRule(Scope.IDENTITY),
    "Child.sources": FieldRule(Scope.IDENTITY),
    "Child.address": FieldRule(Scope.CONTACT, reveals_location=True, source_fields=("address",)),
    "Child.carers": FieldRule(Scope.CONTACT, source_fields=("carers",)),
    "Carer.address": FieldRule(Scope.CONTACT, reveals_location=True),
    "Child.education": FieldRule(Scope.EDUCATION, reveals_location=True,
                                 source_fields=("school",)),
    "Child.primaryCare": FieldRule(Scope.HEALTH, reveals_location=True,
                                   source_fields=("practice",)),
    "Child.services": FieldRule(Scope.SERVICES, source_fields=("services",)),
    "Service.contact": FieldRule(Scope.SERVICES, reveals_location=True),
    "ChildMatch.name": FieldRule(Scope.IDENTITY),
    "ChildMatch.dateOfBirth": FieldRule(Scope.IDENTITY),
}
