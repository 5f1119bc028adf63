"""A simulated school management information system (MIS) with a REST JSON API.

Routes:

- `GET /api/v1/pupils?nhs_number={nhs}`, or
  `GET /api/v1/pupils?surname=&date_of_birth=[&forename=][&postcode=]`
  (exact: names trimmed and case-insensitive, `forename` matching the legal
  forename or a middle name; postcode without spaces, any case) answers::

      {"pupils": [{"nhs_number", "legal_forename", "middle_names", "legal_surname",
                   "date_of_birth", "gender" ("M"|"F"|"X"|"U"), "home_postcode",
                   "school": {"urn", "name", "phone",
                              "address": {"lines": [...], "town", "postcode"}},
                   "contacts": [{"forename", "surname", "relationship", "priority",
                                 "phone", "address": {"lines", "town", "postcode"}}]}],
       "count": n}

- `GET /api/v1/health`: `{"status": "ok"}`.

Errors are `{"error": code, "message": text}`, status 400, 500 or 503 (or
any 4xx/5xx that `Knobs.unknown_status` asks for).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from connectors.simulators.challenges import add_challenge_routes
from connectors.simulators.knobs import Knobs
from connectors.simulators.server import (
    QueryRefusedError,
    matching_children,
    simulated_app,
)

if TYPE_CHECKING:
    from connectors.simulators.population import Population
    from connectors.simulators.records import Child, Place

__all__ = ["create_school_app"]

_PARAMS = ("nhs_number", "surname", "date_of_birth", "forename", "postcode")
_GENDER_CODES = {"female": "F", "male": "M", "other": "X", "unknown": "U"}
_ERROR_CODES = {400: "bad_request", 404: "not_found"}


def create_school_app(population: Population, knobs: Knobs | None = None, *,
                      seed: int = 0) -> web.Application:
    """The simulated school MIS for `population`, obeying `knobs` (default: healthy)."""
    app = simulated_app(population, knobs or Knobs(), _error, seed=seed)
    app.router.add_get("/api/v1/health", _health)
    app.router.add_get("/api/v1/pupils", _pupils)
    add_challenge_routes(app, "SCH")  # POST /challenges (see simulators.challenges)
    return app


def _error(status: int, message: str) -> web.Response:
    code = _ERROR_CODES.get(status, "client_error" if status < 500 else "server_error")
    return web.json_response({"error": code, "message": message}, status=status)


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _pupils(request: web.Request) -> web.Response:
    try:
        children = _matches(request)
    except QueryRefusedError as exc:
        return _error(exc.status, str(exc))
    return web.json_response({"pupils": [_pupil(child) for child in children],
                              "count": len(children)})


def _matches(request: web.Request) -> list[Child]:
    return matching_children(request, "school", _PARAMS)


def _address(place: Place) -> dict[str, object]:
    return {"lines": list(place.lines), "town": place.town, "postcode": place.postcode}


def _pupil(child: Child) -> dict[str, object]:
    school = child.school
    return {
        "nhs_number": child.nhs_number,
        "legal_forename": child.given[0],
        "middle_names": " ".join(child.given[1:]),
        "legal_surname": child.family,
        "date_of_birth": child.date_of_birth.isoformat(),
        "gender": _GENDER_CODES[child.gender],
        "home_postcode": child.home.postcode,
        "school": None if school is None else {
            "urn": school.urn, "name": school.name, "phone": school.phone,
            "address": _address(school.address),
        },
        "contacts": [
            {"forename": carer.given, "surname": carer.family,
             "relationship": carer.relationship, "priority": priority,
             "phone": carer.phone, "address": _address(carer.address)}
            for priority, carer in enumerate(child.carers, start=1)
        ],
    }
