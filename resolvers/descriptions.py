"""Schema descriptions generated from the policy table, so they cannot drift from the rules.

A field's description is what it holds (the `[descriptions]` table of
`gateway/core/policy/fields.toml`) followed by sentences generated from its
row: the scope that releases it, shielding (`location`), the consent rule
(`sensitive`), what a silent system does to it (`source`) and, for the two
lookups, the 18+ rule. Nobody writes a scope name into a description by hand:
`describe` does, from the table `decide` applies. `tests/unit/test_descriptions.py`
checks that every field of the schema is described this way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.core.policy import DEFAULT_PURPOSES, FIELD_POLICY, Scope
from gateway.core.policy.decide import ADULT_AGE

if TYPE_CHECKING:
    from collections.abc import Iterable

    from gateway.core.policy import FieldRule

__all__ = [
    "CASE_REFERENCE",
    "CHILD_ID",
    "NHS_NUMBER",
    "PURPOSE",
    "SEARCH",
    "SEARCH_POSTCODE",
    "describe",
    "purpose_value",
]

# The root fields that look a child up: there a person aged 18 or over without
# recorded consent to retention is answered exactly as an unknown child.
_ADULT_ANSWER = {
    "Query.child": "null with `NOT_FOUND`",
    "Query.findChildren": "never among the matches",
}
_CHILD_SCOPES = tuple(s for s in Scope if s.value.startswith("child."))


def _code(name: str) -> str:
    return f"`{name}`"


def _either(names: Iterable[str]) -> str:
    """"`a`", "`a` or `b`", "`a`, `b` or `c`"."""
    quoted = [_code(n) for n in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _purpose_limited(scope: Scope) -> bool:
    """Whether the purpose table governs `scope` (the `child.*` scopes; not `audit.read`)."""
    return any(scope in allowed for allowed in DEFAULT_PURPOSES.values())


def _scope_sentence(key: str, rule: FieldRule) -> str:
    if rule.inherit:
        return f"Released whenever its `{key.split('.')[0]}` is."
    if not rule.scopes:
        return "Needs no scope of its own."
    names = _either(s.value for s in rule.scopes)
    limited = all(_purpose_limited(s) for s in rule.scopes)
    if len(rule.scopes) == 1:
        released = f"Released with scope {names}" + (
            " if the purpose permits it" if limited else "")
    else:
        released = f"Released with any one of the scopes {names}" + (
            " that the purpose permits" if limited else "")
    return f"{released}; otherwise `FORBIDDEN`."


def _rule_sentences(key: str, rule: FieldRule) -> Iterable[str]:
    yield _scope_sentence(key, rule)
    if rule.reveals_location:
        yield ("Withheld (`SHIELDED`) for a shielded child, or one whose shielding status is "
               f"unknown, unless the caller has `{Scope.SHIELDED.value}` and gives a "
               "`caseReference`.")
    if rule.sensitive:
        purposes = [p for p, allowed in DEFAULT_PURPOSES.items() if Scope.SENSITIVE in allowed]
        yield ("Sensitive services appear only with the child's recorded consent, the scope "
               f"`{Scope.SENSITIVE.value}` and a purpose that permits it (by default "
               f"{_either(purposes)}); otherwise they are absent, not redacted.")
    if rule.source_fields:
        yield ("`UPSTREAM_UNAVAILABLE` when a system able to state it did not answer and no "
               "other system did.")
    if key in _ADULT_ANSWER:
        yield (f"A person aged {ADULT_AGE} or over, or of unknown date of birth, is answered as "
               "an unknown child unless a system records their consent to retention: "
               f"{_ADULT_ANSWER[key]}.")


def describe(key: str) -> str:
    """The description of the schema field `key` (`Type.field`), from its policy row."""
    rule = FIELD_POLICY[key]
    return " ".join((rule.description, *_rule_sentences(key, rule)))


def purpose_value(name: str) -> str:
    """The description of one `Purpose` value: which `child.*` scopes it may not use."""
    barred = [s.value for s in _CHILD_SCOPES if s not in DEFAULT_PURPOSES[name]]
    if not barred:
        return "By default it may use every `child.*` scope."
    needing = "it" if len(barred) == 1 else "them"
    return (f"By default it may not use {_either(barred)} (fields needing {needing} are "
            "`FORBIDDEN`).")


PURPOSE = ("Why the caller is asking; written to the audit log with every release. It limits "
           "the scopes this request may use (see `Purpose`).")
CASE_REFERENCE = (
    "The case this request serves; written to the audit log. Needed, with "
    f"`{Scope.SHIELDED.value}`, to see a shielded child's location fields. A value that is "
    "not a case reference is `BAD_USER_INPUT`.")
CHILD_ID = ("An id from `findChildren`, for the client that searched. An unknown, foreign or "
            "expired id is `NOT_FOUND`.")
NHS_NUMBER = ("The child's NHS number: 10 digits (spaces and hyphens ignored) with a valid "
              "Modulus 11 check digit; otherwise `BAD_USER_INPUT`.")
SEARCH = "What to match, exactly; see `ChildSearch` for the combinations allowed."
SEARCH_POSTCODE = (
    "The child's home postcode. Never compared for a child whose address the caller may not "
    f"see (shielded, or no `{Scope.CONTACT.value}`): such a child is found only on the other "
    "attributes, so a search cannot confirm where they live.")
