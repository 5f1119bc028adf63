"""Reading FHIR R4 Patient search Bundles and Organizations into source facts (no I/O).

A GP system answers `GET /Patient?...&_include=Patient:general-practitioner`
with a `searchset` Bundle: Patient entries (`search.mode` "match") and, if the
server honours `_include`, their practices as Organization entries. The GP
connector resolves any practice not included with a separate read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from connectors.shape import (
    ShapeError,
    iso_date,
    items,
    nhs_number,
    obj,
    opt_obj,
    opt_text,
    text,
    texts,
)
from gateway.core.facts import Address, Organisation, PersonName, SourceFacts

if TYPE_CHECKING:
    import datetime as dt

__all__ = [
    "FHIR_JSON",
    "INCLUDE_PRACTICE",
    "NHS_NUMBER_SYSTEM",
    "ODS_CODE_SYSTEM",
    "PatientRecord",
    "read_bundle",
    "read_capability_statement",
    "read_organization",
    "read_patient",
]

FHIR_JSON = "application/fhir+json"
NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_CODE_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
INCLUDE_PRACTICE = "Patient:general-practitioner"

_GENDERS = frozenset({"male", "female", "other", "unknown"})
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """A Patient's facts (practice not yet resolved) and its practice's Organization id."""

    facts: SourceFacts
    practice_id: str | None


def read_bundle(raw: object, identifier_system: str = NHS_NUMBER_SYSTEM,
                ) -> tuple[list[PatientRecord], dict[str, Organisation]]:
    """The matched Patients of a search Bundle, and its included Organizations by id.

    `identifier_system` is the system URI of the Patient identifier holding the NHS number.
    """
    patients, organisations = read_bundle_fields(raw, identifier_system)
    return [PatientRecord(SourceFacts(**fields), practice_id)
            for fields, practice_id in patients], organisations


def read_bundle_fields(raw: object, identifier_system: str = NHS_NUMBER_SYSTEM,
                       ) -> tuple[list[tuple[dict[str, Any], str | None]],
                                  dict[str, Organisation]]:
    """`read_bundle`, each Patient as the `SourceFacts` fields it states and its practice's id:
    the GP connector builds each child's facts once, with the practice resolved."""
    bundle = _resource(raw, "Bundle")
    patients: list[tuple[dict[str, Any], str | None]] = []
    organisations: dict[str, Organisation] = {}
    for raw_entry in items(bundle.get("entry"), "Bundle.entry", optional=True):
        entry = obj(raw_entry, "Bundle.entry[]")
        resource = obj(entry.get("resource"), "Bundle.entry[].resource")
        search = opt_obj(entry.get("search"), "Bundle.entry[].search") or {}
        mode = opt_text(search.get("mode"), "Bundle.entry[].search.mode")
        kind = resource.get("resourceType")
        if kind == "Patient" and mode in (None, "match"):
            patients.append(_patient_fields(resource, identifier_system))
        elif kind == "Organization":
            org_id, organisation = read_organization(resource)
            organisations[org_id] = organisation
    return patients, organisations


def read_capability_statement(raw: object) -> None:
    """Check that `raw` is the CapabilityStatement of a FHIR R4 server (the GP health answer)."""
    statement = _resource(raw, "CapabilityStatement")
    version = text(statement.get("fhirVersion"), "CapabilityStatement.fhirVersion")
    if not version.startswith("4.0."):
        raise ShapeError("CapabilityStatement.fhirVersion: expected FHIR R4 (4.0.x)")


def read_patient(raw: object, identifier_system: str = NHS_NUMBER_SYSTEM) -> PatientRecord:
    """A Patient resource as facts, plus the id of its general practice (if any)."""
    fields, practice_id = _patient_fields(raw, identifier_system)
    return PatientRecord(SourceFacts(**fields), practice_id)


def _patient_fields(raw: object, identifier_system: str) -> tuple[dict[str, Any], str | None]:
    patient = _resource(raw, "Patient")
    gender = opt_text(patient.get("gender"), "Patient.gender")
    if gender is not None and gender not in _GENDERS:
        raise ShapeError("Patient.gender: expected a FHIR administrative gender")
    fields = {
        "nhs_number": _nhs_identifier(patient.get("identifier"), identifier_system),
        "name": _name(_preferred(patient.get("name"), "Patient.name", "official")),
        "date_of_birth": _birth_date(patient.get("birthDate")),
        "gender": gender,
        "address": _address(_preferred(patient.get("address"), "Patient.address", "home")),
    }
    return fields, _practice_id(patient.get("generalPractitioner"))


def read_organization(raw: object) -> tuple[str, Organisation]:
    """An Organization resource: its logical id and the practice it describes."""
    org = _resource(raw, "Organization")
    org_id = _logical_id(org.get("id"), "Organization.id")
    code = None
    for raw_identifier in items(org.get("identifier"), "Organization.identifier", optional=True):
        identifier = obj(raw_identifier, "Organization.identifier[]")
        if identifier.get("system") == ODS_CODE_SYSTEM:
            code = text(identifier.get("value"), "Organization.identifier[].value")
    phone = None
    for raw_telecom in items(org.get("telecom"), "Organization.telecom", optional=True):
        telecom = obj(raw_telecom, "Organization.telecom[]")
        if telecom.get("system") == "phone" and phone is None:
            phone = opt_text(telecom.get("value"), "Organization.telecom[].value")
    address = _address(_preferred(org.get("address"), "Organization.address", "work"))
    return org_id, Organisation(text(org.get("name"), "Organization.name"), code, phone, address)


def _resource(raw: object, kind: str) -> dict[str, object]:
    resource = obj(raw, kind)
    if resource.get("resourceType") != kind:
        raise ShapeError(f"{kind}.resourceType: expected {kind}")
    return resource


def _logical_id(value: object, where: str) -> str:
    # Checked before it is put in a request path: an upstream must not steer our URLs.
    if not isinstance(value, str) or not _FHIR_ID.fullmatch(value):
        raise ShapeError(f"{where}: expected a FHIR id")
    return value


def _nhs_identifier(value: object, system: str) -> str:
    for raw_identifier in items(value, "Patient.identifier", optional=True):
        identifier = obj(raw_identifier, "Patient.identifier[]")
        if identifier.get("system") == system:
            return nhs_number(identifier.get("value"), "Patient.identifier[].value")
    raise ShapeError("Patient.identifier: no NHS number")


def _name(name: dict[str, object] | None) -> PersonName | None:
    if name is None:
        return None
    family = opt_text(name.get("family"), "Patient.name[].family")
    given = texts(name.get("given"), "Patient.name[].given", optional=True)
    return None if family is None else PersonName(given, family)


def _birth_date(value: object) -> dt.date | None:
    # FHIR allows a partial date ("2015", "2015-03"): valid, but not a date of birth to match.
    if isinstance(value, str) and len(value) in (4, 7) and value.replace("-", "").isdigit():
        return None
    return None if value is None else iso_date(value, "Patient.birthDate")


def _preferred(value: object, where: str, use: str) -> dict[str, object] | None:
    """The entry of a FHIR list with `use` (never "old"), else the first that is not "old"."""
    place = f"{where}[]"
    entries = [obj(item, place) for item in items(value, where, optional=True)]
    first = None
    for entry in entries:
        entry_use = entry.get("use")
        if entry_use == use:
            return entry
        if first is None and entry_use != "old":
            first = entry
    return first


def _address(address: dict[str, object] | None) -> Address | None:
    if address is None:
        return None
    lines = texts(address.get("line"), "address.line", optional=True)
    city = opt_text(address.get("city"), "address.city")
    postcode = opt_text(address.get("postalCode"), "address.postalCode")
    all_lines = lines if city is None else (*lines, city)
    if not all_lines and postcode is None:
        return None
    return Address(all_lines, postcode)


def _practice_id(value: object) -> str | None:
    for raw_reference in items(value, "Patient.generalPractitioner", optional=True):
        reference = opt_text(obj(raw_reference, "Patient.generalPractitioner[]").get("reference"),
                             "Patient.generalPractitioner[].reference")
        if reference is None:
            continue
        kind, _, org_id = reference.rstrip("/").rpartition("/")
        if kind.endswith("Organization"):
            return _logical_id(org_id, "Patient.generalPractitioner[].reference")
    return None
