"""`decide` works out its scope-only part once per (scopes, purpose): never per child.

The cached part must not leak between accesses that differ in anything it depends on
(scopes, purpose, what the purpose permits, whether a case reference is given), and
the child-dependent part (shielding, failed systems, sensitive items) must still be
decided for each child.
"""

import itertools

from gateway.core.facts import Address, SourceFacts
from gateway.core.facts import Service as ServiceFacts
from gateway.core.policy import GUARDED, Access, ChildState, Scope, decide, scope_reason
from gateway.core.policy.decide import _SHIELDED, _UNAVAILABLE

SERVICES = (
    ServiceFacts("Early help", "Family hub", sensitive=False, consent_recorded=False),
    ServiceFacts("Sexual health", "Clinic A", sensitive=True, consent_recorded=True),
    ServiceFacts("Substance misuse", "Team B", sensitive=True, consent_recorded=False),
)
FACTS = SourceFacts("9990000018", address=Address(("1 Elm Road",), "LS6 2AB"), services=SERVICES)


def _reference(access, child):
    """`decide` as it was written before the scope-only part was cached (row by row)."""
    withheld = {}
    items = {}
    for key, rule in GUARDED.items():
        reason = scope_reason(rule.scopes, access)
        if reason is None and rule.reveals_location and child.shielded \
                and not access.may_reveal_shielded:
            reason = _SHIELDED
        if reason is None and any(n in child.unavailable for n in rule.source_fields):
            reason = _UNAVAILABLE
        if reason is not None:
            withheld[key] = reason
        if rule.sensitive:
            for fact in rule.source_fields:
                found = getattr(child.facts, fact)
                items[fact] = None if found is None else tuple(
                    i for i in found if not i.sensitive
                    or (access.grants(Scope.SENSITIVE) and i.consent_recorded))
    released = any(rule.sensitive and key not in withheld for key, rule in GUARDED.items())
    return withheld, items, frozenset() if released else child.membership_sensitive


def test_decide_matches_the_row_by_row_reference_for_every_combination():
    scope_sets = [frozenset(), frozenset(Scope), frozenset({Scope.IDENTITY, Scope.CONTACT}),
                  frozenset({Scope.SERVICES, Scope.SENSITIVE}),
                  frozenset({Scope.CONTACT, Scope.SHIELDED})]
    children = [ChildState(FACTS, shielded=s, unavailable=frozenset(u),
                           membership_sensitive=frozenset({"yjs"}))
                for s in (False, True) for u in ((), ("address",), ("services",))]
    for scopes, purpose, case, child in itertools.product(
            scope_sets, ("SAFEGUARDING", "EDUCATION", "NOT_A_PURPOSE"), (None, "", "C-1"),
            children):
        access = Access.of(scopes, purpose, case)
        decision = decide(access, child)
        withheld, items, unnamed = _reference(access, child)
        assert dict(decision.withheld) == withheld
        assert list(decision.withheld) == list(withheld)
        assert dict(decision.items) == items
        assert decision.unnamed == unnamed


def test_a_case_reference_changes_the_shielding_decision_after_a_cached_one():
    shielded = ChildState(FACTS, shielded=True)
    without = decide(Access.of(frozenset(Scope), "SAFEGUARDING"), shielded)
    with_case = decide(Access.of(frozenset(Scope), "SAFEGUARDING", "C-1"), shielded)
    assert without.withheld["Child.address"].code == "SHIELDED"
    assert "Child.address" not in with_case.withheld


def test_the_purpose_table_is_part_of_the_key():
    child = ChildState(FACTS, shielded=False)
    scopes = frozenset({Scope.CONTACT})
    permitted = decide(Access.of(scopes, "X", purposes={"X": frozenset({Scope.CONTACT})}), child)
    refused = decide(Access.of(scopes, "X", purposes={"X": frozenset()}), child)
    assert "Child.address" not in permitted.withheld
    assert refused.withheld["Child.address"].code == "FORBIDDEN"
