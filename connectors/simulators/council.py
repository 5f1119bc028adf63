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

  Each result also says `"childProtectionPlan": bool, "lookedAfter": bool,
  "responsibleAuthority"` (the authority responsible for the plan or the care,
  null when the child has neither).

- `POST /cp-is/notifications` takes a CP-IS style notification (JSON object, with an
  `Idempotency-Key` header) and answers 201 `{"reference": ...}`; the same key again
  gets the same reference and is not recorded twice. What it took is kept in
  `app[NOTIFICATIONS]`, in order; `app[NOTIFICATIONS_STATUS]` set to an error status
  makes it refuse (the rest of the system still answering).

- `GET /api/health`: `{"status": "UP"}`.

Errors are `{"status": code, "error": reason, "message": text}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

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
    from connectors.simulators.records import Child, CouncilRecord

__all__ = ["NOTIFICATIONS", "NOTIFICATIONS_STATUS", "Notification", "create_council_app"]

NOTIFICATIONS = web.AppKey("notifications", list["Notification"])
NOTIFICATIONS_STATUS = web.AppKey("notifications_status", list[int])
"""One status (default 201); tests swap it for 503 to make only this endpoint fail."""

_PARAMS = ("nhsNumber", "familyName", "dateOfBirth", "givenName", "postcode")
_KNOWN_STATUSES = frozenset(status.value for status in HTTPStatus)


def create_council_app(population: Population, knobs: Knobs | None = None, *,
                       seed: int = 0) -> web.Application:
    """The simulated council system for `population`, obeying `knobs` (default: healthy)."""
    app = simulated_app(population, knobs or Knobs(), _error, seed=seed)
    app.router.add_get("/api/health", _health)
    app.router.add_get("/api/children", _children)
    add_challenge_routes(app, "LA")  # POST /challenges (see simulators.challenges)
    app.router.add_post("/cp-is/notifications", _notification)
    app[NOTIFICATIONS] = []
    app[NOTIFICATIONS_STATUS] = [int(HTTPStatus.CREATED)]
    return app


@dataclass(frozen=True, slots=True)
class Notification:
    """One notification the council took: its idempotency key, reference and body."""

    key: str
    reference: str
    body: dict[str, Any]


async def _notification(request: web.Request) -> web.Response:
    status = request.app[NOTIFICATIONS_STATUS][0]
    if status >= HTTPStatus.BAD_REQUEST:
        return _error(status, "notifications are not being taken")
    key = request.headers.get("Idempotency-Key", "")
    try:
        body = await request.json()
    except ValueError:
        return _error(400, "the body is not JSON")
    if not key or not isinstance(body, dict):
        return _error(400, "send a JSON object with an Idempotency-Key header")
    taken = request.app[NOTIFICATIONS]
    earlier = next((n for n in taken if n.key == key), None)
    if earlier is None:
        earlier = Notification(key, f"CPIS-{len(taken) + 1:06d}", body)
        taken.append(earlier)
    return web.json_response({"reference": earlier.reference}, status=HTTPStatus.CREATED)


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
        **_protection(child),
        "involvements": [
            {"service": item.name, "type": item.kind, "sensitive": item.sensitive,
             "consentRecorded": item.consent_recorded, "contact": item.contact}
            for item in record.involvements
        ],
    }


def _protection(child: Child) -> dict[str, object]:
    status = child.protection
    if status is None:
        return {"childProtectionPlan": False, "lookedAfter": False,
                "responsibleAuthority": None}
    return {"childProtectionPlan": status.child_protection_plan,
            "lookedAfter": status.looked_after,
            "responsibleAuthority": status.responsible_authority}
