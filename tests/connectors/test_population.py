"""The synthetic population: deterministic, plausible, and holding the promised fixtures."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest

from connectors.simulators import FIXTURE_KEYS, Population
from connectors.simulators.population import age_on, normalise_postcode
from gateway.core.nhs import is_valid_nhs_number
from tests.connectors.helpers import TODAY

SYSTEMS = ("gp", "school", "council")
POSTCODE = re.compile(r"LS\d{1,2} \d[ABD-HJLNP-UW-Z]{2}")


def known(child):
    return {system for system in SYSTEMS if child.known_to(system)}


def test_same_inputs_give_the_same_population():
    first = Population.generate(seed=7, size=400, today=TODAY)
    second = Population.generate(seed=7, size=400, today=TODAY)
    assert first.children == second.children
    assert first.fixtures() == second.fixtures()


def test_another_seed_gives_other_children():
    first = Population.generate(seed=7, size=400, today=TODAY)
    other = Population.generate(seed=8, size=400, today=TODAY)
    assert {c.nhs_number for c in first.children} != {c.nhs_number for c in other.children}


def test_too_small_a_population_is_refused():
    with pytest.raises(ValueError, match="at least 7"):
        Population.generate(size=6, today=TODAY)


def test_nhs_numbers_are_valid_unique_and_in_the_test_range(population):
    numbers = [child.nhs_number for child in population.children]
    assert len(numbers) == len(set(numbers)) == len(population)
    assert all(is_valid_nhs_number(n) and n.startswith("999") for n in numbers)


def test_fixtures_name_distinct_children(population):
    fixtures = population.fixtures()
    assert tuple(fixtures) == FIXTURE_KEYS
    assert len(set(fixtures.values())) == len(FIXTURE_KEYS)
    children = [population.child(nhs) for nhs in fixtures.values()]
    assert len({(c.family, c.date_of_birth) for c in children}) == len(FIXTURE_KEYS)


@pytest.mark.parametrize("key", FIXTURE_KEYS)
def test_each_fixture_is_found_alone_by_family_name_and_date_of_birth(population, key):
    child = population.child(population.fixtures()[key])
    for system in known(child):
        found = population.search(system, child.family.upper(), child.date_of_birth)
        assert found == [child]
    matches = [c for c in population.children
               if (c.family, c.date_of_birth) == (child.family, child.date_of_birth)]
    assert matches == [child]


def _services(child):
    return child.council.involvements


def test_fixture_properties(population):
    get = {key: population.child(nhs) for key, nhs in population.fixtures().items()}
    for key, child in get.items():
        expected = {"school"} if key == "school_only" else set(SYSTEMS)
        assert known(child) == expected, key
    ordinary = get["ordinary"]
    assert 5 <= age_on(ordinary.date_of_birth, TODAY) <= 15
    assert not ordinary.council.shielded
    assert any(not s.sensitive for s in _services(ordinary))

    shielded = get["shielded"]
    assert shielded.council.shielded
    assert any(s.contact for s in _services(shielded))

    consented = get["sensitive_consented"]
    assert not consented.council.shielded
    assert any(s.sensitive and s.consent_recorded for s in _services(consented))
    assert any(not s.sensitive for s in _services(consented))

    unconsented = get["sensitive_unconsented"]
    assert not unconsented.council.shielded
    assert any(s.sensitive and not s.consent_recorded for s in _services(unconsented))
    assert any(not s.sensitive for s in _services(unconsented))

    for key, consent in (("adult_no_consent", False), ("adult_consented", True)):
        adult = get[key]
        assert age_on(adult.date_of_birth, TODAY) in (18, 19)
        assert adult.council.retention_consent is consent
    assert 4 <= age_on(get["school_only"].date_of_birth, TODAY) <= 17


def test_fixtures_hold_on_other_seeds_and_days():
    for seed, day in ((1, dt.date(2024, 2, 29)), (99, dt.date(2030, 12, 31))):
        population = Population.generate(seed=seed, size=50, today=day)
        adult = population.child(population.fixtures()["adult_consented"])
        assert age_on(adult.date_of_birth, day) == 18
        assert adult.council.retention_consent


def test_membership_is_realistic(population):
    n = len(population)
    ages = {c.nhs_number: age_on(c.date_of_birth, TODAY) for c in population.children}
    school_age = [c for c in population.children if 4 <= ages[c.nhs_number] <= 17]
    assert 0.93 < len(population.members("gp")) / n < 0.995
    assert 0.85 < sum(c.school is not None for c in school_age) / len(school_age) < 0.95
    assert not any(c.school for c in population.children if ages[c.nhs_number] < 4)
    assert 0.30 < len(population.members("council")) / n < 0.42
    shielded = [c for c in population.children if c.council and c.council.shielded]
    assert 0.005 < len(shielded) / n < 0.03
    assert 0.015 < sum(age >= 18 for age in ages.values()) / n < 0.05
    assert max(ages.values()) <= 20
    assert all(known(child) for child in population.children)
    assert any(len(known(child)) == 1 for child in population.children)
    assert all(not c.council.retention_consent for c in population.children
               if c.council and ages[c.nhs_number] < 18)


def test_sensitive_kinds_are_marked_sensitive(population):
    sensitive = {"Child and adolescent mental health", "Sexual health", "Substance misuse"}
    services = [s for c in population.members("council") for s in c.council.involvements]
    assert {s.kind for s in services} >= sensitive | {"Social care", "Early help"}
    assert all(s.sensitive == (s.kind in sensitive) for s in services)
    assert all(len(c.council.involvements) <= 3 for c in population.members("council"))


def test_contact_details_are_drama_numbers_and_uk_shaped(population):
    for child in population.children[:500]:
        assert POSTCODE.fullmatch(child.home.postcode)
        assert re.fullmatch(r"\d{1,3} [A-Z][a-z]+( [A-Z][a-z]+)*", child.home.lines[-1])
        assert 1 <= len(child.carers) <= 2
        for carer in child.carers:
            assert re.fullmatch(r"07700 900\d{3}", carer.phone)
        for org in (child.practice, child.school):
            if org is not None:
                assert re.fullmatch(r"0113 496 0\d{3}", org.phone)
    codes = {c.practice.code for c in population.members("gp")}
    urns = {c.school.urn for c in population.members("school")}
    assert all(re.fullmatch(r"[A-Z]\d{5}", code) for code in codes)
    assert all(re.fullmatch(r"\d{6}", urn) for urn in urns)
    assert 50 <= len(codes) <= 60
    assert 30 <= len(urns) <= 40


def test_search_is_exact_case_and_space_insensitive(population):
    child = population.child(population.fixtures()["ordinary"])
    family, dob = f"  {child.family.lower()} ", child.date_of_birth
    assert population.search("gp", family, dob) == [child]
    assert population.search("gp", family, dob, given=child.given[-1].upper()) == [child]
    postcode = normalise_postcode(child.home.postcode).lower()
    assert population.search("council", family, dob, postcode=postcode) == [child]
    assert population.search("gp", family, dob, given="Nobody") == []
    assert population.search("gp", family, dob, postcode="LS1 1AA") == []
    assert population.search("gp", family[:-2], dob) == []
    assert population.search("gp", family, dob.replace(year=dob.year - 1)) == []


def test_lookups_answer_only_for_a_systems_members(population):
    child = population.child(population.fixtures()["school_only"])
    assert population.lookup("school", child.nhs_number) == child
    assert population.lookup("gp", child.nhs_number) is None
    assert population.search("council", child.family, child.date_of_birth) == []
    assert population.lookup("gp", "9990000018") is None


def test_records_are_immutable(population):
    with pytest.raises(dataclasses.FrozenInstanceError):
        population.children[0].family = "Changed"
