"""The decision function: (access, child state) -> what is released, what withheld and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.policy.table import DEFAULT_PURPOSES, GUARDED, FieldRule, Scope

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping

    from connectors.facts import Service, SourceFacts

__all__ = ["Access", "ChildState", "Decision", "Withheld", "decide", "is_servable"]

ADULT_AGE = 18


@dataclass(frozen=True, slots=True)
class Access:
    """Who asks and why: the caller's scopes, the purpose and what it permits, the case."""

    scopes: frozenset[str]
    purpose: str
    case_reference: str | None = None
    purpose_scopes: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, scopes: frozenset[str], purpose: str, case_reference: str | None = None,
           purposes: Mapping[str, frozenset[Scope]] = DEFAULT_PURPOSES) -> Access:
        """Access for `purpose` under a purpose table (unknown purposes permit nothing)."""
        return cls(scopes, purpose, case_reference, frozenset(purposes.get(purpose, ())))

    def grants(self, scope: str) -> bool:
        """The caller holds `scope` and the purpose permits using it."""
        return scope in self.scopes and scope in self.purpose_scopes

    @property
    def may_reveal_shielded(self) -> bool:
        return self.grants(Scope.SHIELDED) and bool(self.case_reference)


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


_SHIELDED = Withheld(
    "SHIELDED",
    "Withheld: this child's location is shielded (or its shielding status is unknown); it "
    f"needs {Scope.SHIELDED.value} and a caseReference.",
)
_UNAVAILABLE = Withheld("UPSTREAM_UNAVAILABLE", "The system holding this field did not answer.")


def scope_reason(scopes: tuple[Scope, ...], access: Access) -> Withheld | None:
    """FORBIDDEN unless some scope in `scopes` is held and permitted by the purpose."""
    if not scopes or any(access.grants(s) for s in scopes):
        return None
    held = next((s for s in scopes if s in access.scopes), None)
    if held is not None:
        return Withheld("FORBIDDEN", f"The purpose {access.purpose} does not permit the scope "
                        f"{held.value}.", held.value)
    return Withheld("FORBIDDEN", f"This field needs the scope {scopes[0].value}.",
                    scopes[0].value)


def _reason(rule: FieldRule, access: Access, child: ChildState) -> Withheld | None:
    forbidden = scope_reason(rule.scopes, access)
    if forbidden is not None:
        return forbidden
    if rule.reveals_location and child.shielded and not access.may_reveal_shielded:
        return _SHIELDED
    if any(name in child.unavailable for name in rule.source_fields):
        return _UNAVAILABLE
    return None


def _visible_services(access: Access, services: tuple[Service, ...] | None
                      ) -> tuple[Service, ...] | None:
    if services is None:
        return None
    sensitive_ok = access.grants(Scope.SENSITIVE)
    return tuple(s for s in services if not s.sensitive or (sensitive_ok and s.consent_recorded))


def decide(access: Access, child: ChildState) -> Decision:
    """Decide every guarded field once for this request; pure, no I/O."""
    withheld = {}
    for key, rule in GUARDED.items():
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
