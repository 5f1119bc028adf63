"""Defensive readers for JSON answers from source systems.

Each reader takes a decoded JSON value and the place it came from (for
example ``"pupil.school.name"``) and returns it typed, or raises `ShapeError`.
Messages name the place and the expected type, never the value: upstream
bodies hold children's data. Connectors turn `ShapeError` into
`ConnectorProtocolError` at their boundary.
"""

from __future__ import annotations

import datetime as dt

from gateway.core.nhs import is_valid_nhs_number

__all__ = [
    "ShapeError",
    "flag",
    "iso_date",
    "items",
    "nhs_number",
    "obj",
    "opt_obj",
    "opt_text",
    "text",
    "texts",
]


class ShapeError(ValueError):
    """A JSON value is not of the agreed shape; the message says where, never what."""


def obj(value: object, where: str) -> dict[str, object]:
    """A JSON object."""
    if not isinstance(value, dict):
        raise ShapeError(f"{where}: expected an object")
    return value


def opt_obj(value: object, where: str) -> dict[str, object] | None:
    """A JSON object, or null/absent."""
    return None if value is None else obj(value, where)


def items(value: object, where: str, *, optional: bool = False) -> list[object]:
    """A JSON array (absent counts as empty when `optional`)."""
    if value is None and optional:
        return []
    if not isinstance(value, list):
        raise ShapeError(f"{where}: expected an array")
    return value


def text(value: object, where: str) -> str:
    """A non-empty JSON string."""
    if not isinstance(value, str) or not value.strip():
        raise ShapeError(f"{where}: expected a non-empty string")
    return value


def opt_text(value: object, where: str) -> str | None:
    """A JSON string, or null/absent/empty (all `None`)."""
    if value is None or value == "":
        return None
    return text(value, where)


def texts(value: object, where: str, *, optional: bool = False) -> tuple[str, ...]:
    """A JSON array of non-empty strings."""
    place = f"{where}[]"
    return tuple([text(item, place) for item in items(value, where, optional=optional)])


def flag(value: object, where: str) -> bool:
    """A JSON boolean (no truthy stand-ins: a missing flag is an error)."""
    if not isinstance(value, bool):
        raise ShapeError(f"{where}: expected true or false")
    return value


def iso_date(value: object, where: str) -> dt.date:
    """A full ISO date, ``YYYY-MM-DD``."""
    if not isinstance(value, str) or len(value) != 10:
        raise ShapeError(f"{where}: expected a date, YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ShapeError(f"{where}: expected a date, YYYY-MM-DD") from None


def nhs_number(value: object, where: str) -> str:
    """A valid NHS number (ten digits, Modulus 11 check digit)."""
    if not isinstance(value, str) or not is_valid_nhs_number(value):
        raise ShapeError(f"{where}: expected a valid NHS number")
    return value
