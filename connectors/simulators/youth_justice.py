"""A simulated youth justice case management system with a REST JSON API (its own dialect).

Deliberately unlike the council: snake_case mixed with camelCase, a nested
name, "Y"/"N" flags and UK dates (DD/MM/YYYY) in queries and answers alike.

Routes:

- `GET /yj/v2/young-people?nhs={nhs}`, or
  `GET /yj/v2/young-people?surname=&birth_date=DD/MM/YYYY[&forename=][&postcode=]`
  (exact, as the other systems) answers::

      {"data": {"youngPeople": [
          {"ref": "YJ-000123", "nhs_no",
           "name": {"first", "middle" (or null), "last"},
           "dob": "DD/MM/YYYY", "restricted": "Y"|"N",
           "orders": [{"programme", "category", "worker_phone" (or null),
                       "sensitive": "Y"|"N", "consent": "Y"|"N"}]}]},
       "count": n}

  `restricted` is the service's shielding flag, present on every record.

- `GET /yj/v2/status`: `{"service": "up"}`.

Errors are `{"fault": {"code": status, "text": message}}`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

from aiohttp import web

from connectors.simulators.challenges import add_challenge_routes
from connectors.simulators.knobs import Knobs
from connectors.simulators.server import (
    DateFormat,
    QueryRefusedError,
    matching_children,
    simulated_app,
)

if TYPE_CHECKING:
    from connectors.simulators.population import Population
    from connectors.simulators.records import Child, Involvement, YouthJusticeRecord

__all__ = ["UK_DATE", "create_youth_justice_app", "parse_uk_date"]

_PARAMS = ("nhs", "surname", "birth_date", "forename", "postcode")
_UK_DATE_TEXT = re.compile(r"(\d{2})/(\d{2})/(\d{4})", re.ASCII)


def parse_uk_date(text: str) -> dt.date:
    """A strict DD/MM/YYYY date (two-digit day and month); raises `ValueError` otherwise."""
    match = _UK_DATE_TEXT.fullmatch(text)
    if match is None:
        raise ValueError("not a DD/MM/YYYY date")
    day, month, year = (int(part) for part in match.groups())
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise ValueError("not a DD/MM/YYYY date") from None


def _write_uk_date(day: dt.date) -> str:
    return f"{day.day:02d}/{day.month:02d}/{day.year:04d}"


UK_DATE = DateFormat(parse_uk_date, "DD/MM/YYYY", _write_uk_date)
"""The youth justice system's dates, in queries and answers."""


def create_youth_justice_app(population: Population, knobs: Knobs | None = None, *,
                             seed: int = 0) -> web.Application:
    """The simulated youth justice system for `population`, obeying `knobs` (default: healthy)."""
    app = simulated_app(population, knobs or Knobs(), _fault, seed=seed)
    app.router.add_get("/yj/v2/status", _status)
    app.router.add_get("/yj/v2/young-people", _young_people)
    add_challenge_routes(app, "YJ")  # POST /challenges (see simulators.challenges)
    return app


def _fault(status: int, message: str) -> web.Response:
    return web.json_response({"fault": {"code": status, "text": message}}, status=status)


async def _status(request: web.Request) -> web.Response:
    return web.json_response({"service": "up"})


async def _young_people(request: web.Request) -> web.Response:
    try:
        children = matching_children(request, "youth_justice", _PARAMS, date_format=UK_DATE)
    except QueryRefusedError as exc:
        return _fault(exc.status, str(exc))
    people = [_young_person(child, child.youth_justice) for child in children
              if child.youth_justice is not None]
    return web.json_response({"data": {"youngPeople": people}, "count": len(people)})


def _flag(value: bool) -> str:
    return "Y" if value else "N"


def _young_person(child: Child, record: YouthJusticeRecord) -> dict[str, object]:
    return {
        "ref": record.ref,
        "nhs_no": child.nhs_number,
        "name": {"first": child.given[0], "middle": " ".join(child.given[1:]) or None,
                 "last": child.family},
        "dob": UK_DATE.write(child.date_of_birth),
        "restricted": _flag(record.restricted),
        "orders": [_order(order) for order in record.orders],
    }


def _order(order: Involvement) -> dict[str, object]:
    return {"programme": order.kind, "category": order.name, "worker_phone": order.contact,
            "sensitive": _flag(order.sensitive), "consent": _flag(order.consent_recorded)}
