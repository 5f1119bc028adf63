"""`findChildren`: exact search by NHS number or demographics, at most 5 matches, client-bound ids.

README "Searching".
"""

from __future__ import annotations

import dataclasses

import pytest

from connectors.simulators import Population, run_simulators
from gateway.core.policy.decide import age_on
from tests.integration.harness import ALL_SCOPES, CHILD_QUERY, FIND_QUERY, running_gateway
from tests.integration.support import (
    CHILD_BY_ID,
    post,
    record,
    total_hits,
    twins,
    unknown_nhs,
)


def _spaced(nhs: str) -> str:
    return f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}"


def _match(gateway, nhs: str) -> dict:
    child = record(gateway, nhs)
    return {"id": gateway.id_for(nhs), "name": {"given": list(child.given),
                                                  "family": child.family},
            "dateOfBirth": child.date_of_birth.isoformat()}


async def _find(gateway, search: dict, **kwargs) -> dict:
    return await gateway.gql(FIND_QUERY, {"s": search}, **kwargs)


def _searches(child) -> dict[str, dict]:
    dob = child.date_of_birth.isoformat()
    postcode = child.home.postcode
    return {
        "nhs": {"nhsNumber": child.nhs_number},
        "nhs-spaced": {"nhsNumber": _spaced(child.nhs_number)},
        "nhs-padded": {"nhsNumber": f"  {_spaced(child.nhs_number)} "},
        "given": {"familyName": child.family, "dateOfBirth": dob, "givenName": child.given[0]},
        "given-case": {"familyName": child.family.upper(), "dateOfBirth": dob,
                       "givenName": f"  {child.given[0].lower()} "},
        "postcode": {"familyName": child.family, "dateOfBirth": dob, "postcode": postcode},
        "postcode-lower": {"familyName": child.family.lower(), "dateOfBirth": dob,
                           "postcode": postcode.lower()},
        "postcode-unspaced": {"familyName": child.family, "dateOfBirth": dob,
                              "postcode": postcode.replace(" ", "")},
        "postcode-extra-spaces": {"familyName": child.family, "dateOfBirth": dob,
                                  "postcode": f" {postcode.replace(' ', '   ')} "},
        "nhs-and-matching-family": {"nhsNumber": child.nhs_number, "familyName": child.family},
    }


FOUND_BY = ["nhs", "nhs-spaced", "nhs-padded", "given", "given-case", "postcode",
            "postcode-lower", "postcode-unspaced", "postcode-extra-spaces",
            "nhs-and-matching-family"]


@pytest.mark.parametrize("how", FOUND_BY)
async def test_search_finds_the_child(gateway, how):
    child = record(gateway, "ordinary")
    body = await _find(gateway, _searches(child)[how])
    assert "errors" not in body, body
    assert body["data"]["findChildren"] == [_match(gateway, child.nhs_number)]


async def test_search_by_a_middle_given_name(gateway):
    population = gateway.sims.population
    child = next(c for c in population.children
                 if len(c.given) > 1 and age_on(c.date_of_birth, population.today) < 18
                 and (c.council is None or not c.council.shielded))
    body = await _find(gateway, {"familyName": child.family,
                                 "dateOfBirth": child.date_of_birth.isoformat(),
                                 "givenName": child.given[-1]})
    assert body["data"]["findChildren"] == [_match(gateway, child.nhs_number)]


@pytest.mark.parametrize("mismatch", [
    {"familyName": "Nobodyknows"},
    {"givenName": "Nobodyknows"},
    {"dateOfBirth": "2001-01-01"},
    {"postcode": "LS1 1AA"},
])
async def test_nhs_number_with_a_mismatching_attribute_finds_nothing(gateway, mismatch):
    body = await _find(gateway, {"nhsNumber": gateway.fixtures["ordinary"], **mismatch})
    assert body == {"data": {"findChildren": []}}


def _incomplete(child) -> dict[str, dict]:
    dob = child.date_of_birth.isoformat()
    return {
        "empty": {},
        "family-only": {"familyName": child.family},
        "family-dob": {"familyName": child.family, "dateOfBirth": dob},
        "family-given": {"familyName": child.family, "givenName": child.given[0]},
        "family-postcode": {"familyName": child.family, "postcode": child.home.postcode},
        "dob-given-postcode": {"dateOfBirth": dob, "givenName": child.given[0],
                               "postcode": child.home.postcode},
        "blank-family": {"familyName": "   ", "dateOfBirth": dob, "givenName": child.given[0]},
        "not-a-postcode": {"familyName": child.family, "dateOfBirth": dob, "postcode": "XYZ"},
    }


def _bad_numbers(nhs: str) -> dict[str, str]:
    wrong_digit = nhs[:9] + str((int(nhs[9]) + 1) % 10)
    return {"check-digit": wrong_digit, "nine-digits": nhs[:9], "eleven-digits": nhs + "0",
            "letters": nhs[:9] + "X", "empty": ""}


BAD_SEARCHES = [
    *(f"incomplete:{name}" for name in ("empty", "family-only", "family-dob", "family-given",
                                        "family-postcode", "dob-given-postcode",
                                        "blank-family", "not-a-postcode")),
    *(f"nhs:{name}" for name in ("check-digit", "nine-digits", "eleven-digits", "letters",
                                 "empty")),
]


@pytest.mark.parametrize("how", BAD_SEARCHES)
async def test_bad_search_is_bad_user_input_and_asks_no_system(gateway, how):
    child = record(gateway, "ordinary")
    kind, name = how.split(":")
    search = (_incomplete(child)[name] if kind == "incomplete"
              else {"nhsNumber": _bad_numbers(child.nhs_number)[name]})
    before = total_hits(gateway)
    body = await _find(gateway, search)
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert total_hits(gateway) == before


async def test_unknown_child_finds_nothing(gateway):
    unknown = unknown_nhs(gateway.sims.population)
    assert await _find(gateway, {"nhsNumber": unknown}) == {"data": {"findChildren": []}}
    child = record(gateway, "ordinary")
    body = await _find(gateway, {"familyName": "Nobodyknows",
                                 "dateOfBirth": child.date_of_birth.isoformat(),
                                 "givenName": child.given[0]})
    assert body == {"data": {"findChildren": []}}


async def test_at_most_five_matches(population, jwks, signing_key):
    # No (family name, date of birth) pair repeats in the seeded population, so build
    # seven children who share one name and birthday, served by their own systems.
    template = population.child(population.fixtures()["ordinary"])
    crowd = twins(population, template, 7)
    async with (run_simulators(crowd, shutdown_timeout=0.2) as sims,
                running_gateway(sims, jwks, signing_key) as gateway):
        body = await _find(gateway, {"familyName": template.family,
                                     "dateOfBirth": template.date_of_birth.isoformat(),
                                     "givenName": template.given[0]})
        assert "errors" not in body, body
        matches = body["data"]["findChildren"]
        assert len(matches) == 5
        ids = {m["id"] for m in matches}
        assert len(ids) == 5
        assert ids <= {gateway.id_for(c.nhs_number) for c in crowd.children}


async def test_adults_without_consent_do_not_hide_a_servable_match(population, jwks,
                                                                   signing_key):
    template = population.child(population.fixtures()["adult_consented"])
    assert template.council is not None
    crowd = twins(population, template, 6)
    refused = dataclasses.replace(template.council, retention_consent=False)
    # The five lowest NHS numbers are adults without consent; the highest has consent.
    children = [dataclasses.replace(c, council=refused) for c in crowd.children[:5]]
    children.append(crowd.children[5])
    crowd = Population(children, population.today, {})
    async with (run_simulators(crowd, shutdown_timeout=0.2) as sims,
                running_gateway(sims, jwks, signing_key) as gateway):
        body = await _find(gateway, {"familyName": template.family,
                                     "dateOfBirth": template.date_of_birth.isoformat(),
                                     "givenName": template.given[0]})
        assert [m["id"] for m in body["data"]["findChildren"]] == [
            gateway.id_for(children[5].nhs_number)]


# --- ids --------------------------------------------------------------------------------


async def test_ids_are_stable_per_client_and_differ_between_clients(gateway):
    nhs = gateway.fixtures["ordinary"]
    [first] = (await _find(gateway, {"nhsNumber": nhs}))["data"]["findChildren"]
    [again] = (await _find(gateway, {"nhsNumber": _spaced(nhs)}))["data"]["findChildren"]
    [other] = (await _find(gateway, {"nhsNumber": nhs}, client_id="client-b"))[
        "data"]["findChildren"]
    assert first["id"] == again["id"]
    assert other["id"] != first["id"]
    assert nhs not in first["id"]
    assert nhs not in other["id"]
    for client, child_id in (("client-a", first["id"]), ("client-b", other["id"])):
        body = await gateway.gql(CHILD_BY_ID, {"id": child_id}, client_id=client)
        assert body == {"data": {"child": {"nhsNumber": nhs}}}


async def test_another_clients_id_reads_exactly_as_a_forged_or_unknown_id(gateway):
    nhs = gateway.fixtures["ordinary"]
    id_for_a = gateway.id_for(nhs, "client-a")
    unknown_for_b = gateway.id_for(unknown_nhs(gateway.sims.population), "client-b")
    answers = {}
    for name, child_id in (("foreign", id_for_a), ("forged", "c1." + "A" * 38),
                           ("unknown", unknown_for_b), ("garbage", "not-an-id")):
        answers[name] = await post(gateway, CHILD_QUERY, {
            "id": child_id, "purpose": "SAFEGUARDING", "case": "C-1"},
            scopes=ALL_SCOPES, client_id="client-b")
    body = answers["foreign"].json()
    assert body["data"] == {"child": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]
    assert nhs not in answers["foreign"].text
    assert {r.content for r in answers.values()} == {answers["foreign"].content}
