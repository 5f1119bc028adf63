"""Knobs that make a simulated system misbehave: slow, failing, down, malformed or non-conformant.

One mutable `Knobs` per simulated app, changed in code (`knobs.down = True`)
or over HTTP (`POST /_sim/knobs` with a partial JSON object). `update`
validates every change before applying any, so a bad request changes nothing.

`drop_keys` and `unknown_status` make a system that answers well-formed but
wrong, so a conformance kit can prove it notices (a missing shielding flag,
an error where "nobody" was the answer).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["MAX_DROP_KEYS", "MAX_LATENCY_MS", "KnobError", "Knobs", "Malformed"]

MAX_LATENCY_MS = 60_000.0
MAX_DROP_KEYS = 32


class KnobError(ValueError):
    """A knob update was refused; the message says which knob and why."""


class Malformed(enum.StrEnum):
    """How a misbehaving system spoils a 200 answer."""

    BROKEN_JSON = "broken_json"
    """The agreed content type, but the body is cut off mid-document."""
    WRONG_SHAPE = "wrong_shape"
    """Valid JSON of another shape (a list where an object belongs)."""
    WRONG_TYPES = "wrong_types"
    """The agreed keys, but every value has the wrong JSON type."""
    HTML = "html"
    """A `text/html` page, as an intercepting proxy would send."""


@dataclass
class Knobs:
    """How one simulated system behaves; the defaults are a healthy system.

    - `latency_ms`: fixed delay before every answer.
    - `error_rate`: fraction (0-1) of requests answered 500 or 503.
    - `down`: drop every connection without answering.
    - `malformed`: spoil every 200 answer this way (`None`: answer properly).
    - `drop_keys`: remove object members with these names, at any depth, from
      every 200 JSON answer (e.g. `("shielded",)`: records without the flag).
    - `unknown_status`: answer a lookup by an NHS number the system does not
      know with this status (400-599) and the system's own error body, instead
      of an empty result (`None`: the empty result).
    """

    latency_ms: float = 0.0
    error_rate: float = 0.0
    down: bool = False
    malformed: Malformed | None = None
    drop_keys: tuple[str, ...] = ()
    unknown_status: int | None = None

    def update(self, changes: Mapping[str, object]) -> None:
        """Apply a partial update; raises `KnobError` (changing nothing) if any part is bad."""
        unknown = sorted(set(changes) - set(_CHECKS))
        if unknown:
            raise KnobError(f"unknown knobs: {', '.join(unknown)}")
        checked = {name: _CHECKS[name](value) for name, value in changes.items()}
        for name, value in checked.items():
            setattr(self, name, value)

    def reset(self) -> None:
        """Back to a healthy system."""
        healthy = Knobs()
        for field in fields(self):
            setattr(self, field.name, getattr(healthy, field.name))

    def to_json(self) -> dict[str, object]:
        """The knobs as the admin endpoint reports them."""
        return {
            "latency_ms": self.latency_ms,
            "error_rate": self.error_rate,
            "down": self.down,
            "malformed": None if self.malformed is None else self.malformed.value,
            "drop_keys": list(self.drop_keys),
            "unknown_status": self.unknown_status,
        }


def _number(value: object, name: str, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= high:
        raise KnobError(f"{name} must be a number from 0 to {high:g}")
    return float(value)


def _latency(value: object) -> float:
    return _number(value, "latency_ms", MAX_LATENCY_MS)


def _error_rate(value: object) -> float:
    return _number(value, "error_rate", 1.0)


def _down(value: object) -> bool:
    if not isinstance(value, bool):
        raise KnobError("down must be true or false")
    return value


def _malformed(value: object) -> Malformed | None:
    if value is None:
        return None
    if isinstance(value, str) and value in _MALFORMED_VALUES:
        return Malformed(value)
    choices = ", ".join(member.value for member in Malformed)
    raise KnobError(f"malformed must be null or one of: {choices}")


def _drop_keys(value: object) -> tuple[str, ...]:
    if (isinstance(value, list | tuple) and len(value) <= MAX_DROP_KEYS
            and all(isinstance(key, str) and key for key in value)):
        return tuple(value)
    raise KnobError(f"drop_keys must be a list of at most {MAX_DROP_KEYS} non-empty strings")


def _unknown_status(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 400 <= value <= 599:
        return value
    raise KnobError("unknown_status must be null or an HTTP status from 400 to 599")


_MALFORMED_VALUES = frozenset(member.value for member in Malformed)
_CHECKS: dict[str, Callable[[object], object]] = {
    "latency_ms": _latency, "error_rate": _error_rate, "down": _down, "malformed": _malformed,
    "drop_keys": _drop_keys, "unknown_status": _unknown_status,
}
