"""The pure policy: plain tables of inputs and expected decisions, no I/O."""

import datetime as dt

import pytest

from connectors.facts import Address, SourceFacts
from connectors.facts import Service as ServiceFacts
from gateway.policy import FIELD_POLICY, Access, ChildState, Scope, decide, is_servable
from gateway.policy.decide import age_on

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


def withheld(scopes, child=None):
    decision = decide(Access(frozenset(scopes), "SAFEGUARDING"), child or state())
    return {key: reason.code for key, reason in decision.withheld.items()}


@pytest.mark.parametrize("scope", list(Scope))
def test_each_scope_alone_releases_exactly_its_fields(scope):
    released = set(FIELD_POLICY) - set(withheld({scope}))
    assert released == {key for key, rule in FIELD_POLICY.items() if rule.scope == scope}


def test_forbidden_names_the_missing_scope():
    decision = decide(Access(frozenset(), "EDUCATION"), state())
    reason = decision.withheld["Child.address"]
    assert (reason.code, reason.scope) == ("FORBIDDEN", "child.contact.read")
    assert "child.contact.read" in reason.message


@pytest.mark.parametrize(("scopes", "shielded", "expected"), [
    (ALL - {Scope.SHIELDED}, True,
     {"Child.address": "SHIELDED", "Carer.address": "SHIELDED", "Child.education": "SHIELDED",
      "Child.primaryCare": "SHIELDED", "Service.contact": "SHIELDED"}),
    (ALL, True, {}),
    (ALL - {Scope.SHIELDED}, False, {}),
])
def test_shielding_withholds_location_fields(scopes, shielded, expected):
    assert withheld(scopes, state(shielded=shielded)) == expected


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
    decision = decide(Access(frozenset(scopes), "HEALTH_CARE"), state())
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
