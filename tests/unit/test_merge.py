"""Merging every system's answer: authority per fact, lists as unions, fail-closed shielding."""

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.facts import Address, Carer, Organisation, PersonName, Service, SourceFacts
from gateway.core.merge import (
    SERVICE_KEY,
    MergeRules,
    SourceBundle,
    SourceOutcome,
    SourceTraits,
    merge,
)

NHS = "9990000018"
TRAITS = {
    "gp": SourceTraits(frozenset({"name", "date_of_birth", "gender", "address", "practice"}),
                       can_shield=False),
    "school": SourceTraits(frozenset({"name", "date_of_birth", "gender", "school", "carers"}),
                           can_shield=False),
    "council": SourceTraits(frozenset({"name", "date_of_birth", "address", "services",
                                       "shielded", "retention_consent"}), can_shield=True),
    "youth_justice": SourceTraits(frozenset({"name", "date_of_birth", "services", "shielded"}),
                                  can_shield=True, membership_sensitive=True),
}
RULES = MergeRules(TRAITS)
GP = SourceFacts(NHS, name=PersonName(("Amy",), "Hill"), date_of_birth=dt.date(2015, 1, 2),
                 address=Address(("1 Elm Road",), "LS6 2AB"), practice=Organisation("Elm GP"))
SCHOOL = SourceFacts(NHS, name=PersonName(("Aimee",), "Hill"), school=Organisation("Elm Primary"),
                     carers=(Carer(PersonName(("Jo",), "Hill"), "Mother"),))
EARLY_HELP = Service("Early help", "Family hub", sensitive=False, consent_recorded=False)
COUNCIL = SourceFacts(NHS, shielded=False, services=(EARLY_HELP,), retention_consent=False,
                      address=Address(("9 Oak Street",), "LS7 1AA"))
REFERRAL = Service("Referral order", "Youth justice service", sensitive=False,
                   consent_recorded=False, contact="0113 496 0001")
YJ = SourceFacts(NHS, shielded=False, services=(REFERRAL,))


def bundle(**outcomes):
    return SourceBundle(NHS, tuple(
        SourceOutcome(name, "unavailable") if value == "down" else SourceOutcome(name, "ok", value)
        for name, value in outcomes.items()))


def test_configuration_order_is_the_default_authority_and_disagreement_is_named():
    result = merge(bundle(gp=GP, school=SCHOOL, council=COUNCIL, youth_justice=YJ), RULES)
    assert result.status == "known"
    state = result.state
    assert state.facts.name == GP.name
    assert state.provenance["name"].sources == ("gp",)
    assert state.provenance["name"].disagreeing == ("school",)
    assert state.facts.address == GP.address
    assert state.provenance["address"].disagreeing == ("council",)
    assert state.membership_sensitive == {"youth_justice"}


def test_a_configured_authority_comes_first_and_failed_authorities_are_named():
    rules = MergeRules(TRAITS, {"address": ("council", "gp"), "name": ("school",)})
    state = merge(bundle(gp=GP, school=SCHOOL, council=COUNCIL, youth_justice=None), rules).state
    assert state.facts.address == COUNCIL.address
    assert state.provenance["address"].sources == ("council",)
    assert state.facts.name == SCHOOL.name
    state = merge(bundle(gp=GP, school=SCHOOL, council="down", youth_justice=None), rules).state
    assert state.facts.address == GP.address
    assert state.provenance["address"].unavailable == ("council",)


def test_services_are_the_union_of_every_system_each_keeping_its_source():
    # Whichever system is listed first, neither hides the other's services.
    for order in (("council", "youth_justice"), ("youth_justice", "council")):
        rules = MergeRules({name: TRAITS[name] for name in order})
        state = merge(bundle(council=COUNCIL, youth_justice=YJ), rules).state
        by_kind = {s.kind: s.sources for s in state.facts.services}
        assert by_kind == {"Early help": ("council",), "Referral order": ("youth_justice",)}
        assert set(state.provenance["services"].sources) == {"council", "youth_justice"}


def test_one_service_stated_twice_appears_once_and_fails_safe():
    sensitive = Service("early HELP", " Family  hub", sensitive=True, consent_recorded=True)
    unconsented = Service("Early help", "Family hub", sensitive=True, consent_recorded=False)
    state = merge(bundle(council=SourceFacts(NHS, shielded=False, services=(sensitive,)),
                         youth_justice=SourceFacts(NHS, shielded=False, services=(unconsented,))),
                  RULES).state
    (service,) = state.facts.services
    assert service.sources == ("council", "youth_justice")
    assert service.sensitive is True
    assert service.consent_recorded is False


def test_a_failed_list_system_marks_the_list_incomplete_not_absent():
    state = merge(bundle(gp=GP, council=COUNCIL, youth_justice="down"), RULES).state
    assert [s.kind for s in state.facts.services] == ["Early help"]
    assert state.provenance["services"].unavailable == ("youth_justice",)
    assert state.shielded is True  # youth justice records shielding and did not answer


def test_nobody_knows_vs_nobody_answered():
    assert merge(bundle(gp=None, school=None, council=None), RULES).status == "unknown"
    assert merge(bundle(gp="down", school=None, council=None), RULES).status == "unavailable"


def test_any_system_that_records_shielding_and_did_not_answer_shields():
    for down in ("council", "youth_justice"):
        outcomes = {"gp": GP, "school": SCHOOL, "council": COUNCIL, "youth_justice": YJ,
                    down: "down"}
        assert merge(bundle(**outcomes), RULES).state.shielded is True
    assert merge(bundle(gp=GP, council=None, youth_justice=None), RULES).state.shielded is False


def test_any_system_saying_shielded_wins():
    state = merge(bundle(gp=GP, council=COUNCIL, youth_justice=SourceFacts(NHS, shielded=True)),
                  RULES).state
    assert state.shielded is True


def test_failed_system_blamed_only_for_fields_nobody_else_gave():
    state = merge(bundle(gp="down", school=SCHOOL, council=COUNCIL), RULES).state
    assert state.unavailable == {"practice", "gender", "date_of_birth"}


def test_cacheable_only_for_an_unshielded_servable_child():
    today = dt.date(2026, 11, 29)
    assert merge(bundle(gp=GP, council=COUNCIL), RULES).cacheable(today)
    assert not merge(bundle(gp=GP, council="down"), RULES).cacheable(today)
    adult = SourceFacts(NHS, date_of_birth=dt.date(2000, 1, 1))
    assert not merge(bundle(gp=adult, council=None), RULES).cacheable(today)


_words = st.sampled_from(["Early help", "early help", "Referral order", "CAMHS", "Family hub",
                          "Sexual health", "Youth justice service"])
_services = st.lists(st.builds(Service, kind=_words, name=_words, sensitive=st.booleans(),
                               consent_recorded=st.booleans(),
                               contact=st.none() | st.just("0113 496 0000")), max_size=5)
_systems = st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=1, max_size=5,
                    unique=True)


@settings(max_examples=300, deadline=None)
@given(systems=_systems, data=st.data())
def test_no_list_item_from_any_system_is_ever_dropped(systems, data):
    """Property: every item any system states is in the union, carrying that system."""
    traits = {name: SourceTraits(frozenset({"services"}), can_shield=False) for name in systems}
    answers = {name: data.draw(st.none() | _services) for name in systems}
    outcomes = tuple(SourceOutcome(name, "ok", SourceFacts(NHS, services=None if items is None
                                                           else tuple(items)))
                     for name, items in answers.items())
    state = merge(SourceBundle(NHS, outcomes), MergeRules(traits)).state
    merged = {SERVICE_KEY(s): s for s in state.facts.services or ()}
    assert len(merged) == len(state.facts.services or ())  # de-duplicated by the stated key
    for name, items in answers.items():
        for item in items or ():
            kept = merged[SERVICE_KEY(item)]
            assert name in kept.sources
            # fail safe: the union is never less sensitive nor more consented than any input
            assert kept.sensitive or not item.sensitive
            assert item.consent_recorded or not kept.consent_recorded
