"""Merging per-source outcomes: precedence, fail-closed shielding, blame for failures."""

import datetime as dt

from connectors.facts import Address, Organisation, PersonName, SourceFacts
from gateway.sources import SourceBundle, SourceOutcome
from resolvers.assembly import SourceTraits, assemble

NHS = "9990000018"
TRAITS = {
    "gp": SourceTraits(frozenset({"name", "date_of_birth", "gender", "address", "practice"}),
                       can_shield=False),
    "school": SourceTraits(frozenset({"name", "date_of_birth", "gender", "school", "carers"}),
                           can_shield=False),
    "council": SourceTraits(frozenset({"name", "date_of_birth", "address", "services",
                                       "shielded", "retention_consent"}), can_shield=True),
}
GP = SourceFacts(NHS, name=PersonName(("Amy",), "Hill"), date_of_birth=dt.date(2015, 1, 2),
                 address=Address(("1 Elm Road",), "LS6 2AB"), practice=Organisation("Elm GP"))
SCHOOL = SourceFacts(NHS, name=PersonName(("Aimee",), "Hill"), school=Organisation("Elm Primary"))
COUNCIL = SourceFacts(NHS, shielded=False, services=(), retention_consent=False)


def bundle(**outcomes):
    return SourceBundle(NHS, tuple(
        SourceOutcome(name, "unavailable") if value == "down" else SourceOutcome(name, "ok", value)
        for name, value in outcomes.items()))


def test_first_system_in_order_wins_and_child_is_known():
    result = assemble(bundle(gp=GP, school=SCHOOL, council=COUNCIL), TRAITS)
    assert result.status == "known"
    assert result.state is not None
    assert result.state.facts.name == GP.name
    assert result.state.facts.school == SCHOOL.school
    assert result.state.shielded is False
    assert result.state.unavailable == frozenset()


def test_nobody_knows_vs_nobody_answered():
    assert assemble(bundle(gp=None, school=None, council=None), TRAITS).status == "unknown"
    assert assemble(bundle(gp="down", school=None, council=None), TRAITS).status == "unavailable"


def test_council_down_means_shielded_and_its_fields_unavailable():
    result = assemble(bundle(gp=GP, school=SCHOOL, council="down"), TRAITS)
    assert result.state is not None
    assert result.state.shielded is True
    assert result.state.unavailable == {"services"}


def test_council_not_knowing_the_child_is_an_answer():
    result = assemble(bundle(gp=GP, school=SCHOOL, council=None), TRAITS)
    assert result.state is not None
    assert result.state.shielded is False


def test_any_source_saying_shielded_wins():
    school = SourceFacts(NHS, shielded=True)
    result = assemble(bundle(gp=GP, school=school, council=COUNCIL), TRAITS)
    assert result.state is not None
    assert result.state.shielded is True


def test_failed_source_blamed_only_for_fields_nobody_else_gave():
    result = assemble(bundle(gp="down", school=SCHOOL, council=COUNCIL), TRAITS)
    assert result.state is not None
    assert result.state.unavailable == {"practice", "address", "gender", "date_of_birth"}
