"""The decision function: (access, child state) -> what is released, what withheld and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from gateway.core.policy.table import DEFAULT_PURPOSES, GUARDED, Scope
from gateway.core.records import fast_init

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping

    from gateway.core.facts import Provenance, SourceFacts

__all__ = ["Access", "ChildState", "Decision", "Withheld", "decide", "is_servable"]

ADULT_AGE = 18


@fast_init
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


@fast_init
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
    provenance: Mapping[str, Provenance] = field(default_factory=dict)
    """Where each merged fact came from (by `SourceFacts` attribute)."""
    membership_sensitive: frozenset[str] = frozenset()
    """Systems whose knowing a child is itself sensitive (youth justice, sexual health)."""


@dataclass(frozen=True, slots=True)
class Withheld:
    """Why a field is withheld: a stable code and a message naming no data."""

    code: str
    message: str
    scope: str | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class Decision:
    """The release decision for one child in one request.

    `withheld` maps `Type.field` keys of the policy table to reasons; a key
    not present is released. `items` holds, for each list fact the table marks
    `sensitive`, the items the caller may see: sensitive items they may not see
    are removed (absent, not redacted). `unnamed` are the systems that may not
    be named to this caller as a source (their membership is sensitive and the
    caller is not released the sensitive lists).
    """

    withheld: Mapping[str, Withheld]
    items: Mapping[str, tuple[Any, ...] | None] = field(default_factory=dict)
    unnamed: frozenset[str] = frozenset()

    @property
    def services(self) -> tuple[Any, ...] | None:
        """The services the caller may see (None: the child has no services stated)."""
        return self.items.get("services")


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


@lru_cache(maxsize=256)
def _scope_work(scopes: frozenset[str], purpose: str, purpose_scopes: frozenset[str],
                has_case: bool) -> tuple[tuple[tuple[str, Withheld | None, bool,
                                                      tuple[str, ...], bool], ...], bool]:
    """The part of `decide` that depends only on the access, never on the child.

    Keyed on the granted scopes, the purpose (and what it permits) and whether a
    case reference was given: for each guarded row, its FORBIDDEN reason (or None),
    whether the shielding rule withholds it from a shielded child, its source
    fields and whether it is filtered item by item; and whether sensitive items
    may be seen.
    """
    access = Access(scopes, purpose, "case" if has_case else None, purpose_scopes)
    shield_blocked = not access.may_reveal_shielded
    rows = tuple((key, scope_reason(rule.scopes, access),
                  rule.reveals_location and shield_blocked, rule.source_fields, rule.sensitive)
                 for key, rule in GUARDED.items())
    return rows, access.grants(Scope.SENSITIVE)


def decide(access: Access, child: ChildState) -> Decision:
    """Decide every guarded field once for this request; pure, no I/O.

    Reads every column of the table: scopes, location (shielding), source
    (failed systems) and sensitive (which list facts are filtered item by item).
    The scope-only part is worked out once per (scopes, purpose) (`_scope_work`).
    """
    rows, sensitive_ok = _scope_work(access.scopes, access.purpose, access.purpose_scopes,
                                     bool(access.case_reference))
    withheld: dict[str, Withheld] = {}
    items: dict[str, tuple[Any, ...] | None] = {}
    shielded = child.shielded
    unavailable = child.unavailable
    facts = child.facts
    sensitive_released = False
    for key, forbidden, location, source_fields, sensitive in rows:
        if forbidden is not None:
            withheld[key] = forbidden
        elif location and shielded:
            withheld[key] = _SHIELDED
        elif unavailable and any(name in unavailable for name in source_fields):
            withheld[key] = _UNAVAILABLE
        elif sensitive:
            sensitive_released = True
        if sensitive:
            for fact in source_fields:
                found = getattr(facts, fact)
                items[fact] = None if found is None else tuple(
                    i for i in found if not i.sensitive or (sensitive_ok and i.consent_recorded))
    unnamed = frozenset() if sensitive_released else child.membership_sensitive
    return Decision(withheld, items, unnamed)


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
