"""The policy table, loaded from `fields.toml` (the reviewable statement of the rules).

`decide` only applies it. Keys are `Type.field` as in the public schema.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_PURPOSES", "FIELD_OF_FACT", "FIELD_POLICY", "GUARDED", "FieldRule", "Scope",
           "load_table"]

TABLE_FILE = Path(__file__).with_name("fields.toml")


class Scope(StrEnum):
    IDENTITY = "child.identity.read"
    CONTACT = "child.contact.read"
    EDUCATION = "child.education.read"
    HEALTH = "child.health.read"
    SERVICES = "child.services.read"
    SENSITIVE = "child.sensitive.read"
    SHIELDED = "child.shielded.read"
    PROTECTION = "child.protection.read"
    AUDIT_READ = "audit.read"
    SUBJECT_SELF = "subject.self"


@dataclass(frozen=True, slots=True)
class FieldRule:
    """One row of the table."""

    scopes: tuple[Scope, ...] = ()
    inherit: bool = False
    reveals_location: bool = False
    sensitive: bool = False
    source_fields: tuple[str, ...] = ()
    description: str = ""
    """What the field holds (the `[descriptions]` table): documentation, never a rule."""

    @property
    def scope(self) -> Scope | None:
        """The first releasing scope (the one named in FORBIDDEN errors)."""
        return self.scopes[0] if self.scopes else None


_ROW_KEYS = {"scopes", "inherit", "location", "sensitive", "source"}


def _rule(key: str, row: dict[str, Any]) -> FieldRule:
    unknown = set(row) - _ROW_KEYS
    if unknown:
        raise ValueError(f"policy row {key}: unknown keys {sorted(unknown)}")
    if bool(row.get("inherit")) == ("scopes" in row):
        raise ValueError(f"policy row {key}: give either scopes or inherit = true")
    source = row.get("source")
    if row.get("sensitive") and not source:
        raise ValueError(f"policy row {key}: sensitive = true needs the source list it filters")
    return FieldRule(
        scopes=tuple(Scope(s) for s in row.get("scopes", ())),
        inherit=bool(row.get("inherit", False)),
        reveals_location=bool(row.get("location", False)),
        sensitive=bool(row.get("sensitive", False)),
        source_fields=(source,) if source else (),
    )


def load_table(text: str) -> tuple[dict[str, FieldRule], dict[str, frozenset[Scope]]]:
    """Parse the policy file: (rules by `Type.field`, scopes by purpose); raises ValueError."""
    data = tomllib.loads(text)
    rules = {key: _rule(key, row) for key, row in data["fields"].items()}
    descriptions: dict[str, str] = data.get("descriptions", {})
    stale = set(descriptions) - set(rules)
    if stale:
        raise ValueError(f"descriptions of fields without a policy row: {sorted(stale)}")
    rules = {key: replace(rule, description=descriptions.get(key, ""))
             for key, rule in rules.items()}
    purposes = {name: frozenset(Scope(s) for s in scopes)
                for name, scopes in data["purposes"].items()}
    return rules, purposes


FIELD_POLICY, DEFAULT_PURPOSES = load_table(TABLE_FILE.read_text(encoding="utf-8"))

FIELD_OF_FACT: dict[str, str] = {
    rule.source_fields[0]: key.split(".")[1] for key, rule in FIELD_POLICY.items()
    if key.startswith("Child.") and rule.source_fields
}
"""The `Child` field each merged fact is released through (from the `source` column)."""

# The rows `decide` evaluates for one child: its own fields and those of the
# objects it holds that carry a rule of their own.
GUARDED: dict[str, FieldRule] = {
    key: rule for key, rule in FIELD_POLICY.items()
    if not rule.inherit and rule.scopes and key.split(".")[0] in {"Child", "Carer", "Service"}
}
