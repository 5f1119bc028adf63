"""The school connector: a school MIS REST API (`GET /api/v1/pupils`).

Maps a pupil to name, date of birth, gender, school and carers (the MIS
contacts). The MIS gives only the pupil's home postcode, so no `address` is
reported: a postcode alone is not an address a practitioner can use.
"""

from __future__ import annotations

from connectors.facts import Address, Carer, Organisation, PersonName, SourceFacts
from connectors.rest_json import RestJsonConnector
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

__all__ = ["SchoolRestConnector", "read_pupils"]

_GENDERS = {"M": "male", "F": "female", "X": "other", "U": "unknown"}


def read_pupils(raw: object) -> list[SourceFacts]:
    """The pupils of a `/api/v1/pupils` answer, as facts (raises `ShapeError`)."""
    return [_pupil(item) for item in items(obj(raw, "answer").get("pupils"), "pupils")]


def _pupil(raw: object) -> SourceFacts:
    pupil = obj(raw, "pupil")
    middle = opt_text(pupil.get("middle_names"), "pupil.middle_names")
    given = (text(pupil.get("legal_forename"), "pupil.legal_forename"),
             *(middle.split() if middle else ()))
    gender = _GENDERS.get(text(pupil.get("gender"), "pupil.gender"))
    if gender is None:
        raise ShapeError("pupil.gender: expected M, F, X or U")
    contacts = pupil.get("contacts")
    return SourceFacts(
        nhs_number=nhs_number(pupil.get("nhs_number"), "pupil.nhs_number"),
        name=PersonName(given, text(pupil.get("legal_surname"), "pupil.legal_surname")),
        date_of_birth=iso_date(pupil.get("date_of_birth"), "pupil.date_of_birth"),
        gender=gender,
        school=_school(opt_obj(pupil.get("school"), "pupil.school")),
        carers=None if contacts is None else tuple(
            _carer(item) for item in items(contacts, "pupil.contacts")),
    )


def _address(raw: object, where: str) -> Address | None:
    address = opt_obj(raw, where)
    if address is None:
        return None
    lines = texts(address.get("lines"), f"{where}.lines", optional=True)
    town = opt_text(address.get("town"), f"{where}.town")
    postcode = opt_text(address.get("postcode"), f"{where}.postcode")
    all_lines = lines if town is None else (*lines, town)
    return Address(all_lines, postcode) if all_lines or postcode else None


def _school(school: dict[str, object] | None) -> Organisation | None:
    if school is None:
        return None
    return Organisation(
        name=text(school.get("name"), "school.name"),
        code=opt_text(school.get("urn"), "school.urn"),
        phone=opt_text(school.get("phone"), "school.phone"),
        address=_address(school.get("address"), "school.address"),
    )


def _carer(raw: object) -> Carer:
    contact = obj(raw, "contact")
    forename = opt_text(contact.get("forename"), "contact.forename")
    return Carer(
        name=PersonName(() if forename is None else (forename,),
                        text(contact.get("surname"), "contact.surname")),
        relationship=opt_text(contact.get("relationship"), "contact.relationship"),
        phone=opt_text(contact.get("phone"), "contact.phone"),
        address=_address(contact.get("address"), "contact.address"),
    )


class SchoolRestConnector(RestJsonConnector):
    """Facts from a school MIS: name, date of birth, gender, school, carers."""

    KIND = "school_rest"
    CAN_SHIELD = False
    PROVIDES = frozenset({"name", "date_of_birth", "gender", "school", "carers"})
    SEARCH_PARAMETERS = ("surname", "date_of_birth", "forename", "postcode")
    RECORDS_PATH = "/api/v1/pupils"
    NHS_PARAMETER = "nhs_number"
    HEALTH_PATH = "/api/v1/health"
    HEALTHY = "ok"
    read_records = staticmethod(read_pupils)
