"""The decision function: (access, child state) -> what is released, what withheld and why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.policy.table import FIELD_POLICY, FieldRule, Scope

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping

    from connectors.facts import Service, SourceFacts

__all__ = ["Access", "ChildState", "Decision", "Withheld", "decide", "is_servable"]

ADULT_AGE = 18


@dataclass(frozen=True, slots=True)
class Access:
    """Who asks and why: the caller's scopes, the stated purpose and case reference."""

    scopes: frozenset[str]
    purpose: str
    case_reference: str | None = None


@dataclass(frozen=True, slots=True)
class ChildState:
    """Merged facts about one child, and what the gateway could not learn.

    `shielded` is already fail-closed: true if any source says so or a source
    able to record shielding did not answer. `unavailable` names the
    `SourceFacts` attributes that are missing because a source failed.
    """

    facts: SourceFacts
    shielded: bool
    unavailable: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Withheld:
    """Why a field is withheld: a stable code and a message naming no data."""

    code: str
    message: str
    scope: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The release decision for one child in one request.

    `withheld` maps `Type.field` keys of the policy table to reasons; a key
    not present is released. `services` is the list the caller may see, with
    sensitive services they may not see already removed (absent, not redacted).
    """

    withheld: Mapping[str, Withheld]
    services: tuple[Service, ...] | None


def _forbidden(rule: FieldRule) -> Withheld:
    return Withheld("FORBIDDEN", f"This field needs the scope {rule.scope.value}.",
                    rule.scope.value)


_SHIELDED = Withheld(
    "SHIELDED",
    "Withheld: this child's location is shielded (or its shielding status is unknown).",
)
_UNAVAILABLE = Withheld("UPSTREAM_UNAVAILABLE", "The system holding this field did not answer.")


def _reason(rule: FieldRule, access: Access, child: ChildState) -> Withheld | None:
    if rule.scope not in access.scopes:
        return _forbidden(rule)
    if rule.reveals_location and child.shielded and Scope.SHIELDED not in access.scopes:
        return _SHIELDED
    if any(name in child.unavailable for name in rule.source_fields):
        return _UNAVAILABLE
    return None


def _visible_services(access: Access, services: tuple[Service, ...] | None
                      ) -> tuple[Service, ...] | None:
    if services is None:
        return None
    sensitive_ok = Scope.SENSITIVE in access.scopes
    return tuple(s for s in services if not s.sensitive or (sensitive_ok and s.consent_recorded))


def decide(access: Access, child: ChildState) -> Decision:
    """Decide every guarded field once for this request; pure, no I/O."""
    withheld = {}
    for key, rule in FIELD_POLICY.items():
        reason = _reason(rule, access, child)
        if reason is not None:
            withheld[key] = reason
    return Decision(withheld, _visible_services(access, child.facts.services))


def age_on(date_of_birth: dt.date, today: dt.date) -> int:
    """Whole years from `date_of_birth` to `today` (a 29 February birthday falls on 1 March)."""
    years = today.year - date_of_birth.year
    return years - ((today.month, today.day) < (date_of_birth.month, date_of_birth.day))


def is_servable(facts: SourceFacts, today: dt.date) -> bool:
    """False for a person aged 18 or over (or of unknown age) without consent to retention.

    Such a person is answered exactly as an unknown child. An unknown date of
    birth cannot prove the person is a child, so it fails closed too.
    """
    if facts.retention_consent:
        return True
    if facts.date_of_birth is None:
        return False
    return age_on(facts.date_of_birth, today) < ADULT_AGE
