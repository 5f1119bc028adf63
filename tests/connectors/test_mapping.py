"""Each connector maps its system's answer for each fixture child to the right facts."""

from __future__ import annotations

import pytest

from connectors.base import Connector
from connectors.simulators import FIXTURE_KEYS, run_simulators
from connectors.simulators.population import normalise_postcode
from gateway.core.facts import Address, Carer, DemographicSearch, Organisation, PersonName
from tests.connectors.helpers import make_connector


def address(place):
    return Address((*place.lines, place.town), place.postcode)


def child_of(population, key):
    return population.child(population.fixtures()[key])


@pytest.mark.parametrize("key", FIXTURE_KEYS)
async def test_gp_maps_a_patient_and_their_practice(gp, population, key):
    child = child_of(population, key)
    facts = await gp.fetch(child.nhs_number)
    if key == "school_only":
        assert facts is None
        return
    assert facts.nhs_number == child.nhs_number
    assert facts.name == PersonName(child.given, child.family)
    assert facts.date_of_birth == child.date_of_birth
    assert facts.gender == child.gender
    assert facts.address == address(child.home)
    practice = child.practice
    assert facts.practice == Organisation(practice.name, practice.code, practice.phone,
                                          address(practice.address))
    assert (facts.school, facts.carers, facts.services, facts.shielded) == (None,) * 4


@pytest.mark.parametrize("key", FIXTURE_KEYS)
async def test_school_maps_a_pupil_their_school_and_contacts(school, population, key):
    child = child_of(population, key)
    facts = await school.fetch(child.nhs_number)
    assert facts.name == PersonName(child.given, child.family)
    assert facts.date_of_birth == child.date_of_birth
    assert facts.gender == child.gender
    assert facts.school == Organisation(child.school.name, child.school.urn, child.school.phone,
                                        address(child.school.address))
    assert facts.carers == tuple(
        Carer(PersonName((c.given,), c.family), c.relationship, c.phone, address(c.address))
        for c in child.carers)
    # The MIS gives only a postcode for the pupil's home: no address is reported.
    assert (facts.address, facts.practice, facts.services, facts.shielded) == (None,) * 4


@pytest.mark.parametrize("key", FIXTURE_KEYS)
async def test_council_maps_shielding_services_and_retention(council, population, key):
    child = child_of(population, key)
    facts = await council.fetch(child.nhs_number)
    if key == "school_only":
        assert facts is None
        return
    record = child.council
    assert facts.name == PersonName(child.given, child.family)
    assert facts.date_of_birth == child.date_of_birth
    assert facts.address == address(child.home)
    assert facts.shielded is record.shielded
    assert facts.retention_consent is record.retention_consent
    assert [(s.kind, s.name, s.sensitive, s.consent_recorded, s.contact)
            for s in facts.services] == [
        (i.kind, i.name, i.sensitive, i.consent_recorded, i.contact) for i in record.involvements]
    assert (facts.gender, facts.school, facts.practice) == (None,) * 3


async def test_fixture_facts_carry_the_promised_flags(council, population):
    fixtures = population.fixtures()
    shielded = await council.fetch(fixtures["shielded"])
    assert shielded.shielded is True
    assert any(s.contact for s in shielded.services)
    consented = await council.fetch(fixtures["sensitive_consented"])
    assert any(s.sensitive and s.consent_recorded for s in consented.services)
    unconsented = await council.fetch(fixtures["sensitive_unconsented"])
    assert any(s.sensitive and not s.consent_recorded for s in unconsented.services)
    assert (await council.fetch(fixtures["adult_consented"])).retention_consent is True
    assert (await council.fetch(fixtures["adult_no_consent"])).retention_consent is False


async def test_an_unknown_child_is_none_everywhere(each):
    connector, _ = each
    assert await connector.fetch("9990000018") is None


async def test_a_child_unknown_to_one_system_is_none_there(population, gp, school, council):
    toddler = next(c for c in population.children
                   if c.school is None and c.practice is not None and c.council is None)
    assert await school.fetch(toddler.nhs_number) is None
    assert await council.fetch(toddler.nhs_number) is None
    assert (await gp.fetch(toddler.nhs_number)).nhs_number == toddler.nhs_number


async def test_demographic_search_is_exact(each, population):
    connector, _ = each
    child = child_of(population, "ordinary")
    dob = child.date_of_birth
    postcode = normalise_postcode(child.home.postcode)
    found = await connector.search(DemographicSearch(child.family, dob))
    assert [f.nhs_number for f in found] == [child.nhs_number]
    found = await connector.search(DemographicSearch(f" {child.family.upper()} ", dob,
                                                     given_name=child.given[0].lower(),
                                                     postcode=postcode))
    assert [f.nhs_number for f in found] == [child.nhs_number]
    for criteria in (DemographicSearch(child.family, dob, given_name="Nobody"),
                     DemographicSearch(child.family, dob, postcode="LS11AA"),
                     DemographicSearch(child.family[:-1], dob),
                     DemographicSearch(child.family, dob.replace(day=1 + dob.day % 27))):
        assert await connector.search(criteria) == []


async def test_search_finds_namesakes_only_among_a_systems_members(population, gp, school):
    children = {}
    for child in population.children:
        children.setdefault((child.family, child.date_of_birth), []).append(child)
    twins = next(group for group in children.values() if len(group) > 1)
    criteria = DemographicSearch(twins[0].family, twins[0].date_of_birth)
    for connector, system in ((gp, "gp"), (school, "school")):
        found = {facts.nhs_number for facts in await connector.search(criteria)}
        assert found == {c.nhs_number for c in twins if c.known_to(system)}


async def test_gp_reads_the_practice_when_the_server_does_not_include_it(population):
    child = child_of(population, "ordinary")
    async with run_simulators(population, include_supported=False) as sims:
        connector = make_connector("gp", sims.gp.url)
        try:
            first = await connector.fetch(child.nhs_number)
            assert first.practice.code == child.practice.code
            assert first.practice.name == child.practice.name
            assert sims.gp.hits["/Organization/{id}"] == 1
            # Practices are cached: the second lookup needs no second read.
            assert await connector.fetch(child.nhs_number) == first
            assert sims.gp.hits == {"/Patient": 2, "/Organization/{id}": 1}
        finally:
            await connector.close()


async def test_gp_uses_the_included_practice_without_a_second_request(gp, sims, population):
    await gp.fetch(population.fixtures()["shielded"])
    assert sims.gp.hits == {"/Patient": 1}


async def test_check_passes_on_a_healthy_system(each):
    connector, simulator = each
    await connector.check()
    assert sum(simulator.hits.values()) == 1


async def test_connectors_describe_themselves(gp, school, council):
    assert [(c.name, c.kind, c.can_shield) for c in (gp, school, council)] == [
        ("gp", "fhir_r4", False), ("school", "rest_json", False),
        ("council", "rest_json", True)]
    assert all(isinstance(c, Connector) and c.cache_ttl == 5.0 for c in (gp, school, council))
    assert "practice" in gp.provides
    assert {"school", "carers"} <= school.provides
    assert {"shielded", "services", "retention_consent"} <= council.provides
    assert "address" not in school.provides
