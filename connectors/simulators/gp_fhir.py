"""A simulated GP system speaking FHIR R4 (`application/fhir+json`), as a GP Connect/PDS-like API.

Routes:

- `GET /Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}` or
  `GET /Patient?family=&birthdate=[&given=][&address-postalcode=]`: a
  `searchset` Bundle of Patients; `_include=Patient:general-practitioner` adds
  the practices as `search.mode = "include"` entries (unless the app was made
  with `include_supported=False`, as some servers are).
- `GET /Organization/{ods-code}`: one practice.
- `GET /metadata`: a small CapabilityStatement (the health check).

Bad parameters get a 400 OperationOutcome; unknown children an empty Bundle
(or, if `Knobs.unknown_status` says so, an OperationOutcome with that status).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from aiohttp import web

from connectors.simulators.challenges import add_challenge_routes
from connectors.simulators.knobs import Knobs
from connectors.simulators.server import (
    POPULATION,
    BadQueryError,
    QueryRefusedError,
    check_query,
    children_with_nhs_number,
    query_date,
    simulated_app,
)

if TYPE_CHECKING:
    from connectors.simulators.population import Population
    from connectors.simulators.records import Child, Place, Practice

__all__ = ["FHIR_JSON", "NHS_NUMBER_SYSTEM", "ODS_CODE_SYSTEM", "create_gp_app"]

FHIR_JSON = "application/fhir+json"
NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_CODE_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
INCLUDE_PRACTICE = "Patient:general-practitioner"

_PATIENT_PARAMS = ("identifier", "family", "given", "birthdate", "address-postalcode",
                   "_include", "_count", "_format")
_SEARCH_PARAM_TYPES = (("identifier", "token"), ("family", "string"), ("given", "string"),
                       ("birthdate", "date"), ("address-postalcode", "string"))
_PRACTICES = web.AppKey("practices", dict[str, "Practice"])
_INCLUDES = web.AppKey("include_supported", bool)


def create_gp_app(population: Population, knobs: Knobs | None = None, *,
                  include_supported: bool = True, seed: int = 0) -> web.Application:
    """The simulated GP system for `population`, obeying `knobs` (default: healthy)."""
    app = simulated_app(population, knobs or Knobs(), _outcome, seed=seed)
    app[_PRACTICES] = {child.practice.code: child.practice
                       for child in population.children if child.practice is not None}
    app[_INCLUDES] = include_supported
    app.router.add_get("/metadata", _metadata)
    app.router.add_get("/Patient", _search_patients)
    app.router.add_get("/Organization/{id}", _read_organization)
    add_challenge_routes(app, "GP")  # POST /challenges (see simulators.challenges)
    return app


def _fhir(payload: dict[str, object], status: int = 200) -> web.Response:
    return web.json_response(payload, status=status, content_type=FHIR_JSON)


def _outcome(status: int, message: str) -> web.Response:
    code = {400: "invalid", 404: "not-found"}.get(status, "transient")
    return _fhir({"resourceType": "OperationOutcome",
                  "issue": [{"severity": "error", "code": code, "diagnostics": message}]},
                 status)


async def _metadata(request: web.Request) -> web.Response:
    patient: dict[str, object] = {
        "type": "Patient",
        "interaction": [{"code": "search-type"}],
        "searchParam": [{"name": name, "type": kind} for name, kind in _SEARCH_PARAM_TYPES],
    }
    if request.app[_INCLUDES]:
        patient["searchInclude"] = [INCLUDE_PRACTICE]
    return _fhir({
        "resourceType": "CapabilityStatement", "status": "active", "kind": "instance",
        "date": "2026-01-01", "fhirVersion": "4.0.1", "format": [FHIR_JSON],
        "rest": [{"mode": "server", "resource": [
            patient, {"type": "Organization", "interaction": [{"code": "read"}]}]}],
    })


async def _search_patients(request: web.Request) -> web.Response:
    try:
        children, include = _matches(request)
    except QueryRefusedError as exc:
        return _outcome(exc.status, str(exc))
    base = str(request.url.origin())
    entries: list[dict[str, object]] = [
        {"fullUrl": f"{base}/Patient/{_patient_id(child)}", "resource": _patient(child),
         "search": {"mode": "match"}}
        for child in children
    ]
    if include and request.app[_INCLUDES]:
        practices = {child.practice.code: child.practice
                     for child in children if child.practice is not None}
        entries.extend(
            {"fullUrl": f"{base}/Organization/{code}", "resource": _organization(practice),
             "search": {"mode": "include"}}
            for code, practice in practices.items()
        )
    bundle: dict[str, object] = {"resourceType": "Bundle", "type": "searchset",
                                 "total": len(children)}
    if entries:
        bundle["entry"] = entries
    return _fhir(bundle)


def _matches(request: web.Request) -> tuple[list[Child], bool]:
    query = request.query
    check_query(query, _PATIENT_PARAMS)
    include = query.get("_include")
    if include not in (None, INCLUDE_PRACTICE):
        raise BadQueryError("unsupported _include")
    population = request.app[POPULATION]
    identifier = query.get("identifier")
    if identifier is not None:
        if set(query) & {"family", "given", "birthdate", "address-postalcode"}:
            raise BadQueryError("identifier cannot be combined with demographic parameters")
        system, _, value = identifier.partition("|")
        if system != NHS_NUMBER_SYSTEM or len(value) != 10 or not value.isdigit():
            raise BadQueryError("identifier must be an NHS number token")
        return children_with_nhs_number(request, "gp", value), include is not None
    family = query.get("family", "").strip()
    if not family:
        raise BadQueryError("search needs identifier, or family and birthdate")
    birthdate = query.get("birthdate")
    if birthdate is not None and birthdate.startswith("eq"):
        birthdate = birthdate[2:]
    dob = query_date(birthdate, "birthdate")
    found = population.search("gp", family, dob, query.get("given"),
                              query.get("address-postalcode"))
    return found, include is not None


async def _read_organization(request: web.Request) -> web.Response:
    practice = request.app[_PRACTICES].get(request.match_info["id"])
    if practice is None:
        return _outcome(404, "no such Organization")
    return _fhir(_organization(practice))


def _patient_id(child: Child) -> str:
    # A stable logical id that is not the NHS number, as real servers use.
    return hashlib.sha256(child.nhs_number.encode()).hexdigest()[:16]


def _address(place: Place, use: str) -> dict[str, object]:
    return {"use": use, "line": list(place.lines), "city": place.town,
            "postalCode": place.postcode}


def _patient(child: Child) -> dict[str, object]:
    patient: dict[str, object] = {
        "resourceType": "Patient",
        "id": _patient_id(child),
        "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": child.nhs_number}],
        "name": [{"use": "official", "family": child.family, "given": list(child.given)}],
        "gender": child.gender,
        "birthDate": child.date_of_birth.isoformat(),
        "address": [_address(child.home, "home")],
    }
    if child.practice is not None:
        patient["generalPractitioner"] = [
            {"reference": f"Organization/{child.practice.code}",
             "identifier": {"system": ODS_CODE_SYSTEM, "value": child.practice.code}}]
    return patient


def _organization(practice: Practice) -> dict[str, object]:
    return {
        "resourceType": "Organization",
        "id": practice.code,
        "identifier": [{"system": ODS_CODE_SYSTEM, "value": practice.code}],
        "active": True,
        "name": practice.name,
        "telecom": [{"system": "phone", "value": practice.phone, "use": "work"}],
        "address": [_address(practice.address, "work")],
    }
