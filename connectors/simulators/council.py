"""A simulated council children's social care system with a REST JSON API (camelCase).

Routes:

- `GET /api/children?nhsNumber={nhs}`, or
  `GET /api/children?familyName=&dateOfBirth=[&givenName=][&postcode=]`
  (exact, as the other systems) answers::

      {"results": [{"personId", "nhsNumber", "forenames": [...], "surname",
                    "dateOfBirth",
                    "address": {"line1", "line2" (or null), "town", "postcode"},
                    "shielded": bool, "retentionConsent": bool,
                    "involvements": [{"service", "type", "sensitive",
                                      "consentRecorded", "contact" (or null)}]}],
       "totalResults": n}

- `GET /api/health`: `{"status": "UP"}`.

Errors are `{"status": code, "error": reason, "message": text}`.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING

from aiohttp import web

from connectors.simulators.knobs import Knobs
from connectors.simulators.server import (
    QueryRefusedError,
    matching_children,
    simulated_app,
)

if TYPE_CHECKING:
    from connectors.simulators.population import Population
    from connectors.simulators.records import Child, CouncilRecord

__all__ = ["create_council_app"]

_PARAMS = ("nhsNumber", "familyName", "dateOfBirth", "givenName", "postcode")
_KNOWN_STATUSES = frozenset(status.value for status in HTTPStatus)


def create_council_app(population: Population, knobs: Knobs | None = None, *,
                       seed: int = 0) -> web.Application:
    """The simulated council system for `population`, obeying `knobs` (default: healthy)."""
    app = simulated_app(population, knobs or Knobs(), _error, seed=seed)
    app.router.add_get("/api/health", _health)
    app.router.add_get("/api/children", _children)
    return app


def _error(status: int, message: str) -> web.Response:
    reason = HTTPStatus(status).phrase if status in _KNOWN_STATUSES else "Error"
    return web.json_response({"status": status, "error": reason, "message": message},
                             status=status)


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "UP"})


async def _children(request: web.Request) -> web.Response:
    try:
        children = _matches(request)
    except QueryRefusedError as exc:
        return _error(exc.status, str(exc))
    results = [_person(child, child.council) for child in children
               if child.council is not None]
    return web.json_response({"results": results, "totalResults": len(results)})


def _matches(request: web.Request) -> list[Child]:
    return matching_children(request, "council", _PARAMS)


def _person(child: Child, record: CouncilRecord) -> dict[str, object]:
    lines = child.home.lines
    return {
        "personId": record.person_id,
        "nhsNumber": child.nhs_number,
        "forenames": list(child.given),
        "surname": child.family,
        "dateOfBirth": child.date_of_birth.isoformat(),
        "address": {"line1": lines[0], "line2": " ".join(lines[1:]) or None,
                    "town": child.home.town, "postcode": child.home.postcode},
        "shielded": record.shielded,
        "retentionConsent": record.retention_consent,
        "involvements": [
            {"service": item.name, "type": item.kind, "sensitive": item.sensitive,
             "consentRecorded": item.consent_recorded, "contact": item.contact}
            for item in record.involvements
        ],
    }
