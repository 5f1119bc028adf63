"""Challenges to a value, as every simulated system takes them (the same routes in each).

- `POST /challenges` takes a JSON object (`nhsNumber`, `field`, `reason`, ...) with an
  `Idempotency-Key` header and answers 201 `{"id": ..., "state": "received"}`; the same
  key again gets the same id and is not recorded twice (the gateway's outbox may send
  a message twice: at least once).
- `GET /challenges/{id}`: `{"id", "state", "resolvedAt"}`, state "received" or "resolved".
- `POST /_sim/challenges/{id}/resolve` marks one resolved (what a records officer does).

What a system took is kept in `app[CHALLENGES]`, in order, so tests can count it.
Both routes obey the system's knobs (a system down refuses challenges too).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from aiohttp import web

__all__ = ["CHALLENGES", "Challenge", "add_challenge_routes"]

CHALLENGES = web.AppKey("challenges", list["Challenge"])


@dataclass(slots=True)
class Challenge:
    """One challenge a system took: its idempotency key, its own id, the body, its state."""

    key: str
    id: str
    body: dict[str, Any]
    state: str = field(default="received")
    resolved_at: str | None = None


def add_challenge_routes(app: web.Application, prefix: str) -> None:
    """Take challenges on `app`; ids are `{prefix}-CH-000001`, ..."""
    app[CHALLENGES] = []

    async def take(request: web.Request) -> web.Response:
        key = request.headers.get("Idempotency-Key", "")
        try:
            body = await request.json()
        except ValueError:
            return _error(HTTPStatus.BAD_REQUEST, "the body is not JSON")
        if not key or not isinstance(body, dict):
            return _error(HTTPStatus.BAD_REQUEST,
                          "send a JSON object with an Idempotency-Key header")
        taken = request.app[CHALLENGES]
        earlier = next((c for c in taken if c.key == key), None)
        if earlier is None:
            earlier = Challenge(key, f"{prefix}-CH-{len(taken) + 1:06d}", body)
            taken.append(earlier)
        return web.json_response({"id": earlier.id, "state": earlier.state},
                                 status=HTTPStatus.CREATED)

    async def read(request: web.Request) -> web.Response:
        found = _find(request)
        if found is None:
            return _error(HTTPStatus.NOT_FOUND, "no such challenge")
        return web.json_response({"id": found.id, "state": found.state,
                                  "resolvedAt": found.resolved_at})

    async def resolve(request: web.Request) -> web.Response:
        found = _find(request)
        if found is None:
            return _error(HTTPStatus.NOT_FOUND, "no such challenge")
        found.state = "resolved"
        found.resolved_at = dt.datetime.now(dt.UTC).isoformat()
        return web.json_response({"id": found.id, "state": found.state})

    app.router.add_post("/challenges", take)
    app.router.add_get("/challenges/{id}", read)
    app.router.add_post("/_sim/challenges/{id}/resolve", resolve)


def _find(request: web.Request) -> Challenge | None:
    wanted = request.match_info["id"]
    return next((c for c in request.app[CHALLENGES] if c.id == wanted), None)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": HTTPStatus(status).phrase, "message": message},
                             status=status)
