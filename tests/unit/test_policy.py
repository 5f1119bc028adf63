"""The pure policy: plain tables of inputs and expected decisions, no I/O."""

import datetime as dt

import pytest

from gateway.core.facts import Address, SourceFacts
from gateway.core.facts import Service as ServiceFacts
from gateway.core.policy import GUARDED, Access, ChildState, Scope, decide, is_servable
from gateway.core.policy.decide import age_on
from gateway.core.policy.table import load_table

ALL = frozenset(Scope)
SERVICES = (
    ServiceFacts("Early help", "Family hub", sensitive=False, consent_recorded=False,
                 contact="01632 960001"),
    ServiceFacts("Sexual health", "Clinic A", sensitive=True, consent_recorded=True),
    ServiceFacts("Substance misuse", "Team B", sensitive=True, consent_recorded=False),
)
FACTS = SourceFacts("9990000018", address=Address(("1 Elm Road",), "LS6 2AB"), services=SERVICES)


def state(*, shielded=False, unavailable=frozenset()):
    return ChildState(FACTS, shielded=shielded, unavailable=frozenset(unavailable))


def withheld(scopes, child=None, *, purpose="SAFEGUARDING", case="CASE-1"):
    decision = decide(Access.of(frozenset(scopes), purpose, case), child or state())
    return {key: reason.code for key, reason in decision.withheld.items()}


@pytest.mark.parametrize("scope", list(Scope))
def test_each_scope_alone_releases_exactly_its_fields(scope):
    released = set(GUARDED) - set(withheld({scope}))
    assert released == {key for key, rule in GUARDED.items() if scope in rule.scopes}


def test_forbidden_names_the_missing_scope():
    decision = decide(Access.of(frozenset(), "EDUCATION"), state())
    reason = decision.withheld["Child.address"]
    assert (reason.code, reason.scope) == ("FORBIDDEN", "child.contact.read")
    assert "child.contact.read" in reason.message


@pytest.mark.parametrize(("scopes", "shielded", "expected"), [
    (ALL - {Scope.SHIELDED}, True,
     {"Child.address": "SHIELDED", "Child.carers": "SHIELDED", "Carer.address": "SHIELDED",
      "Child.education": "SHIELDED", "Child.primaryCare": "SHIELDED",
      "Service.contact": "SHIELDED", "Child.protection": "SHIELDED"}),
    (ALL, True, {}),
    (ALL - {Scope.SHIELDED}, False, {}),
])
def test_shielding_withholds_location_fields(scopes, shielded, expected):
    assert withheld(scopes, state(shielded=shielded)) == expected


@pytest.mark.parametrize(("scopes", "shielded", "case", "code"), [
    (ALL - {Scope.SHIELDED}, True, "CASE-1", "SHIELDED"),   # names, phones lead to the child
    (ALL, True, None, "SHIELDED"),                          # the scope needs a case reference
    (ALL, True, "", "SHIELDED"),
    (ALL, True, "CASE-1", None),
    (ALL - {Scope.SHIELDED}, False, None, None),
    ({Scope.IDENTITY}, True, "CASE-1", "FORBIDDEN"),         # the scope is checked first
], ids=["no-shielded-scope", "no-case", "blank-case", "scope-and-case", "not-shielded",
        "no-contact-scope"])
def test_the_carers_in_full_are_location_revealing(scopes, shielded, case, code):
    assert GUARDED["Child.carers"].reveals_location
    assert withheld(scopes, state(shielded=shielded), case=case).get("Child.carers") == code


def test_scope_is_checked_before_shielding():
    assert withheld({Scope.IDENTITY}, state(shielded=True))["Child.address"] == "FORBIDDEN"


def test_a_failed_source_costs_only_its_own_fields():
    result = withheld(ALL, state(unavailable={"school", "carers"}))
    assert result == {"Child.education": "UPSTREAM_UNAVAILABLE",
                      "Child.carers": "UPSTREAM_UNAVAILABLE"}


@pytest.mark.parametrize(("scopes", "visible"), [
    ({Scope.SERVICES}, ["Family hub"]),
    ({Scope.SERVICES, Scope.SENSITIVE}, ["Family hub", "Clinic A"]),
    ({Scope.SENSITIVE}, ["Family hub", "Clinic A"]),
])
def test_sensitive_services_only_with_scope_and_consent(scopes, visible):
    decision = decide(Access.of(frozenset(scopes), "HEALTH_CARE"), state())
    assert [s.name for s in decision.services or ()] == visible


@pytest.mark.parametrize(("born", "today", "age"), [
    (dt.date(2008, 11, 24), dt.date(2026, 11, 24), 18),
    (dt.date(2008, 11, 25), dt.date(2026, 11, 24), 17),
    (dt.date(2008, 2, 29), dt.date(2026, 2, 28), 17),
    (dt.date(2008, 2, 29), dt.date(2026, 3, 1), 18),
])
def test_age_on(born, today, age):
    assert age_on(born, today) == age


@pytest.mark.parametrize(("born", "consent", "servable"), [
    (dt.date(2010, 1, 1), None, True),
    (dt.date(2008, 11, 24), None, False),   # 18th birthday today
    (dt.date(2008, 11, 24), False, False),
    (dt.date(2008, 11, 24), True, True),
    (None, None, False),                    # unknown age fails closed
    (None, True, True),
])
def test_eighteenth_birthday_rule(born, consent, servable):
    facts = SourceFacts("9990000018", date_of_birth=born, retention_consent=consent)
    assert is_servable(facts, dt.date(2026, 11, 24)) is servable


SHIELDED_PATHS = {"Child.address", "Child.carers", "Carer.address", "Child.education",
                  "Child.primaryCare", "Service.contact", "Child.protection"}


@pytest.mark.parametrize(("case", "purpose", "revealed"), [
    ("CASE-1", "SAFEGUARDING", True),
    (None, "SAFEGUARDING", False),       # the shielded scope needs a case reference
    ("", "SAFEGUARDING", False),
    ("CASE-1", "EDUCATION", True),
])
def test_revealing_a_shielded_child_needs_scope_and_case_reference(case, purpose, revealed):
    result = withheld(ALL, state(shielded=True), purpose=purpose, case=case)
    shielded = {k for k, code in result.items() if code == "SHIELDED"}
    assert shielded == (set() if revealed else SHIELDED_PATHS)


@pytest.mark.parametrize(("purpose", "forbidden"), [
    ("SAFEGUARDING", set()),
    ("HEALTH_CARE", set()),
    ("EDUCATION", {"Child.primaryCare", "Child.protection"}),
    ("YOUTH_JUSTICE", {"Child.primaryCare", "Child.protection"}),
    ("EARLY_HELP", {"Child.protection"}),
    ("SOCIAL_CARE", set()),
    ("NOT_A_PURPOSE", set(GUARDED)),
])
def test_purpose_limitation_table(purpose, forbidden):
    result = withheld(ALL, purpose=purpose)
    assert {k for k, code in result.items() if code == "FORBIDDEN"} == forbidden


def test_purpose_forbidden_message_names_the_purpose():
    decision = decide(Access.of(ALL, "EDUCATION", "C"), state())
    reason = decision.withheld["Child.primaryCare"]
    assert reason.code == "FORBIDDEN"
    assert "EDUCATION does not permit" in reason.message
    assert reason.scope == "child.health.read"


@pytest.mark.parametrize(("purpose", "visible"), [
    ("SAFEGUARDING", ["Family hub", "Clinic A"]),
    ("HEALTH_CARE", ["Family hub", "Clinic A"]),
    ("EDUCATION", ["Family hub"]),
    ("SOCIAL_CARE", ["Family hub"]),
])
def test_sensitive_services_need_a_purpose_that_permits_them(purpose, visible):
    decision = decide(Access.of(ALL, purpose, "C"), state())
    assert [s.name for s in decision.services or ()] == visible


@pytest.mark.parametrize(("text", "fragment"), [
    ('[fields]\n"Child.x" = { scopes = [], bogus = 1 }\n[purposes]\n', "unknown keys"),
    ('[fields]\n"Child.x" = { scopes = [], inherit = true }\n[purposes]\n', "either"),
    ('[fields]\n"Child.x" = { }\n[purposes]\n', "either"),
    ('[fields]\n"Child.x" = { scopes = ["child.everything"] }\n[purposes]\n', "child.everything"),
])
def test_policy_file_errors(text, fragment):
    with pytest.raises(ValueError, match=fragment):
        load_table(text)


def test_a_sensitive_row_must_name_the_list_it_filters():
    table = ('[fields]\n"Child.services" = { scopes = ["child.services.read"], sensitive = true }\n'
             '[purposes]\n')
    with pytest.raises(ValueError, match="sensitive = true needs the source list"):
        load_table(table)


def test_every_row_marked_sensitive_is_filtered_item_by_item():
    sensitive_rows = {key for key, rule in GUARDED.items() if rule.sensitive}
    assert sensitive_rows == {"Child.services"}
    decision = decide(Access.of(frozenset({Scope.SERVICES}), "SAFEGUARDING"), state())
    assert set(decision.items) == {"services"}
    assert [s.name for s in decision.items["services"]] == ["Family hub"]


@pytest.mark.parametrize(("scopes", "unnamed"), [
    ({Scope.IDENTITY}, {"youth_justice"}),                  # services not released
    ({Scope.IDENTITY, Scope.SERVICES}, set()),
    ({Scope.IDENTITY, Scope.SERVICES, Scope.SENSITIVE}, set()),
])
def test_a_membership_sensitive_system_is_named_only_with_services(scopes, unnamed):
    child = ChildState(FACTS, shielded=False, membership_sensitive=frozenset({"youth_justice"}))
    assert decide(Access.of(frozenset(scopes), "SAFEGUARDING"), child).unnamed == unnamed
