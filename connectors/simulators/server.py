"""What every simulated system shares: the knob middleware, the admin routes, query checks.

`simulated_app` makes an `aiohttp.web.Application` whose every route except
`/_sim/...` obeys its `Knobs` (delay, drop, 5xx, keys left out, spoiled body),
and which serves `GET`/`POST /_sim/knobs`. It also counts requests per route
(`app[HITS]`), so tests can see, for example, that a fallback request was made.

`matching_children` answers a records query in a system's own parameter names
and date format; a handler turns any `QueryRefusedError` it raises into the
system's own error body with the error's `status`.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from aiohttp import web

from connectors.simulators.knobs import KnobError, Knobs, Malformed
from connectors.simulators.population import Population

if TYPE_CHECKING:
    from collections.abc import Iterable

    from aiohttp.typedefs import Handler, Middleware
    from multidict import MultiMapping

    from connectors.simulators.records import Child, System

__all__ = [
    "ADMIN_PREFIX",
    "HITS",
    "ISO_DATE",
    "KNOBS",
    "POPULATION",
    "BadQueryError",
    "DateFormat",
    "ErrorResponder",
    "QueryRefusedError",
    "UnknownChildError",
    "check_query",
    "children_with_nhs_number",
    "matching_children",
    "query_date",
    "simulated_app",
]

ADMIN_PREFIX = "/_sim/"
KNOBS = web.AppKey("knobs", Knobs)
HITS = web.AppKey("hits", collections.Counter[str])
POPULATION = web.AppKey("population", Population)

ErrorResponder: TypeAlias = Callable[[int, str], web.Response]
"""Makes the system's own error body for a status and a safe message."""

_HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>Service unavailable</title></head>"
    "<body><h1>Please sign in to the network</h1></body></html>"
)


class QueryRefusedError(Exception):
    """A records query the system refuses; send `status` and the message (safe to echo)."""

    status = 400


class BadQueryError(QueryRefusedError):
    """The query string is not one the system accepts (status 400)."""


class UnknownChildError(QueryRefusedError):
    """An NHS number nobody in the system has, refused as `Knobs.unknown_status` says."""

    def __init__(self, status: int) -> None:
        super().__init__("no record for this NHS number")
        self.status = status


@dataclass(frozen=True, slots=True)
class DateFormat:
    """How a system writes dates in its queries and answers.

    `parse` raises `ValueError` for text that is not a date; `pattern` names
    the form in error messages ("YYYY-MM-DD"); `write` formats a date.
    """

    parse: Callable[[str], dt.date]
    pattern: str
    write: Callable[[dt.date], str]


ISO_DATE = DateFormat(dt.date.fromisoformat, "YYYY-MM-DD", dt.date.isoformat)
"""ISO 8601 calendar dates, as the GP, school and council systems use."""


def simulated_app(population: Population, knobs: Knobs, error_response: ErrorResponder,
                  *, seed: int = 0) -> web.Application:
    """An app serving `population`, obeying `knobs`, answering errors via `error_response`.

    `seed` seeds the draw that decides which requests `knobs.error_rate` fails.
    """
    app = web.Application(middlewares=[_knob_middleware(knobs, error_response, seed)])
    app[POPULATION] = population
    app[KNOBS] = knobs
    app[HITS] = collections.Counter()
    app.router.add_get(ADMIN_PREFIX + "knobs", _get_knobs)
    app.router.add_post(ADMIN_PREFIX + "knobs", _post_knobs)
    return app


def _knob_middleware(knobs: Knobs, error_response: ErrorResponder, seed: int) -> Middleware:
    rng = random.Random(seed)

    @web.middleware
    async def obey_knobs(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(ADMIN_PREFIX):
            return await handler(request)
        request.app[HITS][_route_name(request)] += 1
        if knobs.latency_ms:
            await asyncio.sleep(knobs.latency_ms / 1000)
        if knobs.down:
            return _drop(request)
        if knobs.error_rate and rng.random() < knobs.error_rate:
            return error_response(rng.choice((500, 503)), "the service is unavailable")
        response = await handler(request)
        if response.status != 200 or not isinstance(response, web.Response):
            return response
        if knobs.drop_keys and _is_json(response):
            response = _without_keys(response, frozenset(knobs.drop_keys))
        if knobs.malformed is not None:
            return _spoil(response, knobs.malformed)
        return response

    return obey_knobs


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return request.path if resource is None else resource.canonical


def _drop(request: web.Request) -> web.Response:
    # Close the socket without a status line: the client sees a disconnect.
    # The response returned is never written; aiohttp ignores the closed transport.
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=503)


def _is_json(response: web.Response) -> bool:
    content_type = response.content_type
    return content_type == "application/json" or content_type.endswith("+json")


def _without_keys(response: web.Response, keys: frozenset[str]) -> web.Response:
    body = response.body if isinstance(response.body, bytes) else b"{}"
    pruned = _pruned(json.loads(body), keys)
    return web.Response(text=json.dumps(pruned), content_type=response.content_type)


def _pruned(value: object, keys: frozenset[str]) -> object:
    """`value` with every object member named in `keys` removed, at any depth."""
    if isinstance(value, dict):
        return {k: _pruned(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_pruned(item, keys) for item in value]
    return value


def _spoil(response: web.Response, how: Malformed) -> web.Response:
    body = response.body if isinstance(response.body, bytes) else b"{}"
    content_type = response.content_type
    if how is Malformed.BROKEN_JSON:
        return web.Response(body=body[: max(1, len(body) // 2)], content_type=content_type)
    if how is Malformed.WRONG_SHAPE:
        return web.Response(text='[{"unexpected": true}]', content_type=content_type)
    if how is Malformed.WRONG_TYPES:
        spoiled = _wrong_types(json.loads(body))
        return web.Response(text=json.dumps(spoiled), content_type=content_type)
    return web.Response(text=_HTML_PAGE, content_type="text/html")


def _wrong_types(value: object, key: str = "") -> object:
    """Every leaf replaced by one of another JSON type; FHIR `resourceType` kept."""
    if key == "resourceType":
        return value
    if isinstance(value, dict):
        return {k: _wrong_types(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_wrong_types(item) for item in value]
    if isinstance(value, bool):
        return "yes"
    if isinstance(value, int | float):
        return "many"
    if isinstance(value, str):
        return 12345
    return ["null"]


async def _get_knobs(request: web.Request) -> web.Response:
    return web.json_response(request.app[KNOBS].to_json())


async def _post_knobs(request: web.Request) -> web.Response:
    knobs = request.app[KNOBS]
    try:
        changes = await request.json()
    except ValueError:
        return web.json_response({"error": "the body must be a JSON object"}, status=400)
    if not isinstance(changes, dict):
        return web.json_response({"error": "the body must be a JSON object"}, status=400)
    try:
        knobs.update(changes)
    except KnobError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response(knobs.to_json())


def check_query(query: MultiMapping[str], allowed: Iterable[str]) -> None:
    """Refuse unknown or repeated parameters (raises `BadQueryError`)."""
    unknown = sorted(set(query) - set(allowed))
    if unknown:
        raise BadQueryError(f"unsupported parameter: {unknown[0]}")
    repeated = sorted(name for name in set(query) if len(query.getall(name)) > 1)
    if repeated:
        raise BadQueryError(f"parameter given more than once: {repeated[0]}")


def query_date(text: str | None, name: str, date_format: DateFormat = ISO_DATE) -> dt.date:
    """A required date parameter in `date_format` (default ISO).

    Raises `BadQueryError` naming the parameter and the expected form, never
    echoing the value.
    """
    if not text:
        raise BadQueryError(f"missing parameter: {name}")
    try:
        return date_format.parse(text)
    except ValueError:
        raise BadQueryError(f"{name} must be a date, {date_format.pattern}") from None


def children_with_nhs_number(request: web.Request, system: System,
                             nhs_number: str) -> list[Child]:
    """The child `system` knows by this NHS number, as a list of none or one.

    When nobody has it and `Knobs.unknown_status` is set, raises
    `UnknownChildError` with that status instead of answering an empty list.
    """
    child = request.app[POPULATION].lookup(system, nhs_number)
    if child is not None:
        return [child]
    status = request.app[KNOBS].unknown_status
    if status is not None:
        raise UnknownChildError(status)
    return []


def matching_children(request: web.Request, system: System,
                      names: tuple[str, str, str, str, str], *,
                      date_format: DateFormat = ISO_DATE) -> list[Child]:
    """The children a records query selects, in the system's own parameter `names`.

    `names` are (NHS number, family name, date of birth, given name, postcode);
    the date of birth is read in `date_format`. Either the NHS number alone,
    or family name + date of birth with optional given name and postcode;
    anything else raises `BadQueryError`, and an unknown NHS number may raise
    `UnknownChildError` (see `children_with_nhs_number`).
    """
    nhs_name, family_name, dob_name, given_name, postcode_name = names
    query = request.query
    check_query(query, names)
    nhs_number = query.get(nhs_name)
    if nhs_number is not None:
        if len(query) > 1:
            raise BadQueryError(f"{nhs_name} cannot be combined with other parameters")
        return children_with_nhs_number(request, system, nhs_number)
    family = query.get(family_name, "").strip()
    if not family:
        raise BadQueryError(f"search needs {nhs_name}, or {family_name} and {dob_name}")
    dob = query_date(query.get(dob_name), dob_name, date_format)
    return request.app[POPULATION].search(system, family, dob, query.get(given_name),
                                          query.get(postcode_name))
