"""The council connector: a children's social care REST API (`GET /api/children`).

Maps a council record to name, date of birth, address, shielding, retention
consent and the services involved. The council is the system that records
shielding, so `shielded` must be an explicit boolean: a record without it is
malformed, never "not shielded".
"""

from __future__ import annotations

from connectors.facts import Address, PersonName, Service, SourceFacts
from connectors.rest_json import RestJsonConnector
from connectors.shape import (
    flag,
    iso_date,
    items,
    nhs_number,
    obj,
    opt_obj,
    opt_text,
    text,
    texts,
)

__all__ = ["CouncilRestConnector", "read_results"]


def read_results(raw: object) -> list[SourceFacts]:
    """The records of an `/api/children` answer, as facts (raises `ShapeError`)."""
    return [_person(item) for item in items(obj(raw, "answer").get("results"), "results")]


def _person(raw: object) -> SourceFacts:
    person = obj(raw, "person")
    involvements = person.get("involvements")
    return SourceFacts(
        nhs_number=nhs_number(person.get("nhsNumber"), "person.nhsNumber"),
        name=PersonName(texts(person.get("forenames"), "person.forenames", optional=True),
                        text(person.get("surname"), "person.surname")),
        date_of_birth=iso_date(person.get("dateOfBirth"), "person.dateOfBirth"),
        address=_address(opt_obj(person.get("address"), "person.address")),
        shielded=flag(person.get("shielded"), "person.shielded"),
        retention_consent=flag(person.get("retentionConsent"), "person.retentionConsent"),
        services=None if involvements is None else tuple(
            _service(item) for item in items(involvements, "person.involvements")),
    )


def _address(address: dict[str, object] | None) -> Address | None:
    if address is None:
        return None
    parts = (opt_text(address.get(key), f"address.{key}") for key in ("line1", "line2", "town"))
    lines = tuple(part for part in parts if part is not None)
    postcode = opt_text(address.get("postcode"), "address.postcode")
    return Address(lines, postcode) if lines or postcode else None


def _service(raw: object) -> Service:
    involvement = obj(raw, "involvement")
    return Service(
        kind=text(involvement.get("type"), "involvement.type"),
        name=text(involvement.get("service"), "involvement.service"),
        sensitive=flag(involvement.get("sensitive"), "involvement.sensitive"),
        consent_recorded=flag(involvement.get("consentRecorded"), "involvement.consentRecorded"),
        contact=opt_text(involvement.get("contact"), "involvement.contact"),
    )


class CouncilRestConnector(RestJsonConnector):
    """Facts from a council system: name, dob, address, shielding, services, retention."""

    KIND = "council_rest"
    CAN_SHIELD = True
    PROVIDES = frozenset({"name", "date_of_birth", "address", "shielded", "services",
                          "retention_consent"})
    SEARCH_PARAMETERS = ("familyName", "dateOfBirth", "givenName", "postcode")
    RECORDS_PATH = "/api/children"
    NHS_PARAMETER = "nhsNumber"
    HEALTH_PATH = "/api/health"
    HEALTHY = "UP"
    read_records = staticmethod(read_results)
