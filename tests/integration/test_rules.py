"""The release rules: shielding, sensitive services, 18 and over, a child one system knows.

README "Shielding", "Sensitive services", "18 and over" and "Sources that fail"
(a system that answered "not known" is `ok`).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt

import pytest

from connectors.simulators import Population, run_simulators
from tests.integration.harness import (
    ALL_SCOPES,
    CHILD_QUERY,
    FIND_QUERY,
    errors_by_path,
    running_gateway,
)
from tests.integration.support import (
    ALL_BUT_SHIELDED,
    IDENTITY,
    SENSITIVE,
    SERVICES,
    SYSTEMS,
    expected_child,
    fields_of,
    fresh_nhs_numbers,
    post,
    record,
    service_json,
    sources_of,
    strings,
    unknown_nhs,
    visible_services,
)

# --- shielding --------------------------------------------------------------------------


def _shielded_paths(served: dict) -> set[str]:
    # The carers in full (DESIGN §1): a carer's name or phone leads to the child.
    paths = {"child.address", "child.carers", "child.education", "child.primaryCare"}
    paths |= {f"child.services.{i}.contact" for i in range(len(served["services"]))}
    return paths


def _without_location(child: dict) -> dict:
    """The full answer with every location-revealing value taken out."""
    kept = copy.deepcopy(child)
    for name in ("address", "carers", "education", "primaryCare"):
        kept[name] = None
    for service in kept["services"]:
        service["contact"] = None
    return kept


def _carer_strings(child) -> set[str]:
    """What the systems say about `child`'s carers (bar the family name it shares)."""
    own = {child.family, *child.given}
    values = {v for c in child.carers for v in (c.given, c.family, c.relationship, c.phone)}
    return {v for v in values if v and v not in own}


async def test_shielded_child_without_the_scope_loses_exactly_its_location(gateway):
    child = record(gateway, "shielded")
    assert child.council is not None
    assert child.council.shielded
    assert child.carers, "the fixture exercises every path"
    assert child.council.involvements
    full = (await gateway.child("shielded"))["data"]["child"]
    body = await gateway.child("shielded", scopes=ALL_BUT_SHIELDED)
    served = body["data"]["child"]
    assert served["shielded"] is True
    assert errors_by_path(body) == dict.fromkeys(_shielded_paths(served), "SHIELDED")
    assert fields_of(served) == fields_of(_without_location(full))
    assert served["name"] == {"given": list(child.given), "family": child.family}
    assert served["dateOfBirth"] == child.date_of_birth.isoformat()
    assert served["carers"] is None
    assert [s["name"] for s in served["services"]] == [s.name for s in
                                                      child.council.involvements]


def _shielded_vars(gateway, case: str | None) -> dict:
    return {"id": gateway.id_for(gateway.fixtures["shielded"]), "purpose": "SAFEGUARDING",
            "case": case}


async def test_a_shielded_childs_carers_are_withheld_in_full(gateway):
    child = record(gateway, "shielded")
    carer_values = _carer_strings(child)
    assert {c.phone for c in child.carers} <= carer_values
    assert {c.relationship for c in child.carers} <= carer_values
    response = await post(gateway, CHILD_QUERY, _shielded_vars(gateway, "C-1"),
                          scopes=ALL_BUT_SHIELDED)
    body = response.json()
    assert body["data"]["child"]["carers"] is None
    assert errors_by_path(body)["child.carers"] == "SHIELDED"
    assert not {value for value in carer_values if value in response.text}


@pytest.mark.parametrize("case", [None, "", "   "], ids=["no-case", "empty", "blank"])
async def test_a_shielded_childs_carers_need_a_case_reference_too(gateway, case):
    child = record(gateway, "shielded")
    response = await post(gateway, CHILD_QUERY, _shielded_vars(gateway, case),
                          scopes=ALL_SCOPES)
    body = response.json()
    assert body["data"]["child"]["carers"] is None
    assert errors_by_path(body)["child.carers"] == "SHIELDED"
    assert not {value for value in _carer_strings(child) if value in response.text}


async def test_a_shielded_childs_carers_with_the_scope_and_a_case_reference(gateway):
    child = record(gateway, "shielded")
    body = (await post(gateway, CHILD_QUERY, _shielded_vars(gateway, "C-1"),
                       scopes=ALL_SCOPES)).json()
    assert "errors" not in body, body
    assert body["data"]["child"]["carers"] == expected_child(child)["carers"]
    assert [c["phone"] for c in body["data"]["child"]["carers"]] == [c.phone
                                                                     for c in child.carers]


async def test_withheld_location_values_appear_nowhere_in_the_response(gateway):
    full = (await gateway.child("shielded"))["data"]["child"]
    kept = fields_of(_without_location(full))
    released_text = "\n".join(strings(kept))
    withheld = {v for v in strings(fields_of(full)) if v not in released_text}
    assert len(withheld) >= 5, "the full answer holds the location values"
    response = await post(gateway, CHILD_QUERY, {
        "id": gateway.id_for(gateway.fixtures["shielded"]), "purpose": "SAFEGUARDING",
        "case": "C-1"}, scopes=ALL_BUT_SHIELDED)
    assert not {value for value in withheld if value in response.text}


async def test_shielded_child_with_the_scope_is_released_in_full(gateway):
    body = await gateway.child("shielded", scopes=ALL_SCOPES)
    assert "errors" not in body, body
    served = body["data"]["child"]
    assert served["shielded"] is True
    assert fields_of(served) == expected_child(record(gateway, "shielded"))


async def test_ordinary_child_needs_no_shielded_scope(gateway):
    body = await gateway.child("ordinary", scopes=ALL_BUT_SHIELDED)
    assert "errors" not in body, body
    assert body["data"]["child"]["shielded"] is False
    assert fields_of(body["data"]["child"]) == expected_child(record(gateway, "ordinary"))


# --- sensitive services -----------------------------------------------------------------


@pytest.mark.parametrize("with_scope", [False, True], ids=["no-sensitive-scope", "sensitive"])
@pytest.mark.parametrize("fixture", ["sensitive_consented", "sensitive_unconsented"])
async def test_sensitive_services_appear_only_with_consent_and_scope(gateway, fixture,
                                                                    with_scope):
    child = record(gateway, fixture)
    assert child.council is not None
    sensitive = [s for s in child.council.involvements if s.sensitive]
    plain = [s for s in child.council.involvements if not s.sensitive]
    assert sensitive, "the fixture has both kinds"
    assert plain
    consented = fixture == "sensitive_consented"
    assert all(s.consent_recorded == consented for s in sensitive)
    scopes = f"{IDENTITY} {SERVICES}" + (f" {SENSITIVE}" if with_scope else "")
    response = await post(gateway, CHILD_QUERY, {
        "id": gateway.id_for(child.nhs_number), "purpose": "HEALTH_CARE", "case": None},
        scopes=scopes)
    body = response.json()
    assert errors_by_path(body) == {
        "child.address": "FORBIDDEN", "child.carers": "FORBIDDEN",
        "child.education": "FORBIDDEN", "child.primaryCare": "FORBIDDEN"}
    services = body["data"]["child"]["services"]
    assert services == visible_services(child, sensitive_scope=with_scope)
    shown = consented and with_scope
    assert any(s["sensitive"] for s in services) is shown
    if not shown:
        assert services == [service_json(s) for s in plain], "absent: no null entry, no gap"
        for item in sensitive:
            for value in (item.kind, item.name, item.contact):
                assert value is None or value not in response.text


# --- 18 and over ------------------------------------------------------------------------


def _child_vars(gateway, nhs: str) -> dict:
    return {"id": gateway.id_for(nhs), "purpose": "SAFEGUARDING", "case": "C-1"}


async def test_adult_without_consent_reads_exactly_as_an_unknown_child(gateway):
    adult = gateway.fixtures["adult_no_consent"]
    unknown = unknown_nhs(gateway.sims.population)
    as_adult = await post(gateway, CHILD_QUERY, _child_vars(gateway, adult), scopes=ALL_SCOPES)
    as_unknown = await post(gateway, CHILD_QUERY, _child_vars(gateway, unknown),
                            scopes=ALL_SCOPES)
    body = as_adult.json()
    assert body["data"] == {"child": None}
    assert errors_by_path(body) == {"child": "NOT_FOUND"}
    assert as_adult.content == as_unknown.content


async def test_adult_without_consent_is_not_found_by_search(gateway):
    adult = record(gateway, "adult_no_consent")
    unknown = unknown_nhs(gateway.sims.population)
    searches = [
        ({"nhsNumber": adult.nhs_number}, {"nhsNumber": unknown}),
        ({"familyName": adult.family, "dateOfBirth": adult.date_of_birth.isoformat(),
          "givenName": adult.given[0]},
         {"familyName": "Nobodyknows", "dateOfBirth": adult.date_of_birth.isoformat(),
          "givenName": adult.given[0]}),
    ]
    for adult_search, unknown_search in searches:
        as_adult = await post(gateway, FIND_QUERY, {"s": adult_search}, scopes=ALL_SCOPES)
        as_unknown = await post(gateway, FIND_QUERY, {"s": unknown_search}, scopes=ALL_SCOPES)
        assert as_adult.json() == {"data": {"findChildren": []}}
        assert as_adult.content == as_unknown.content


async def test_adult_with_recorded_retention_consent_is_served(gateway):
    adult = record(gateway, "adult_consented")
    assert adult.council is not None
    assert adult.council.retention_consent
    body = await gateway.child("adult_consented")
    assert "errors" not in body, body
    assert fields_of(body["data"]["child"]) == expected_child(adult)
    found = await gateway.gql(FIND_QUERY, {"s": {"nhsNumber": adult.nhs_number}})
    assert [m["id"] for m in found["data"]["findChildren"]] == [gateway.id_for(adult.nhs_number)]


async def test_the_eighteenth_birthday_is_the_first_day_not_served(population, jwks,
                                                                    signing_key):
    today = population.today
    if (today.month, today.day) == (2, 29):
        pytest.skip("no 18th birthday falls on 29 February")
    eighteen_today = today.replace(year=today.year - 18)
    template = population.child(population.fixtures()["ordinary"])
    turning, nearly = (
        dataclasses.replace(template, nhs_number=nhs, date_of_birth=dob)
        for nhs, dob in zip(fresh_nhs_numbers(population, 2),
                            (eighteen_today, eighteen_today + dt.timedelta(days=1)),
                            strict=True))
    crowd = Population([turning, nearly], today, {})
    async with (run_simulators(crowd, shutdown_timeout=0.2) as sims,
                running_gateway(sims, jwks, signing_key) as gateway):
        body = await gateway.child(turning.nhs_number, fields="nhsNumber")
        assert body["data"] == {"child": None}
        assert errors_by_path(body) == {"child": "NOT_FOUND"}
        body = await gateway.child(nearly.nhs_number, fields="nhsNumber")
        assert body == {"data": {"child": {"nhsNumber": nearly.nhs_number}}}


# --- a child only one system knows ------------------------------------------------------


async def test_child_known_only_to_the_school_is_served_without_errors(gateway):
    child = record(gateway, "school_only")
    assert child.school is not None
    assert child.practice is None
    assert child.council is None
    body = await gateway.child("school_only")
    assert "errors" not in body, body
    served = body["data"]["child"]
    assert served["education"]["school"]["name"] == child.school.name
    assert served["primaryCare"] is None
    assert served["services"] is None
    assert fields_of(served) == expected_child(child)
    assert sources_of(served) == dict.fromkeys(SYSTEMS, ("ok", False))
