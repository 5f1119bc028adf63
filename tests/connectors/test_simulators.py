"""The simulated systems over real HTTP: wire formats, bad requests, knobs."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import aiohttp
import pytest

from connectors.simulators import KnobError, Knobs, Malformed, run_simulators
from tests.connectors.helpers import fixture_child, get

NHS = "https://fhir.nhs.uk/Id/nhs-number"




async def test_gp_answers_a_searchset_bundle_with_the_practice_included(sims, http, population):
    child = fixture_child(population, "ordinary")
    status, content_type, body = await get(
        http, f"{sims.gp.url}/Patient", identifier=f"{NHS}|{child.nhs_number}",
        _include="Patient:general-practitioner")
    assert (status, content_type) == (200, "application/fhir+json")
    bundle = json.loads(body)
    assert (bundle["resourceType"], bundle["type"], bundle["total"]) == ("Bundle", "searchset", 1)
    patient, organization = (entry["resource"] for entry in bundle["entry"])
    assert [entry["search"]["mode"] for entry in bundle["entry"]] == ["match", "include"]
    assert patient["identifier"] == [{"system": NHS, "value": child.nhs_number}]
    assert patient["name"] == [{"use": "official", "family": child.family,
                                "given": list(child.given)}]
    assert patient["birthDate"] == child.date_of_birth.isoformat()
    assert patient["address"][0]["postalCode"] == child.home.postcode
    assert patient["generalPractitioner"][0]["reference"] == f"Organization/{organization['id']}"
    assert organization["identifier"][0] == {
        "system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": child.practice.code}
    assert organization["telecom"][0]["value"] == child.practice.phone


async def test_gp_without_include_and_for_an_unknown_child(sims, http, population):
    child = fixture_child(population, "ordinary")
    _, _, body = await get(http, f"{sims.gp.url}/Patient", identifier=f"{NHS}|{child.nhs_number}")
    assert [e["resource"]["resourceType"] for e in json.loads(body)["entry"]] == ["Patient"]
    school_only = fixture_child(population, "school_only")
    status, _, body = await get(http, f"{sims.gp.url}/Patient",
                                identifier=f"{NHS}|{school_only.nhs_number}")
    assert status == 200
    assert json.loads(body) == {"resourceType": "Bundle", "type": "searchset", "total": 0}


@pytest.mark.parametrize("params", [
    {"identifier": "9990000018"},
    {"identifier": f"{NHS}|12345"},
    {"identifier": f"{NHS}|9990000018", "family": "Smith"},
    {"family": "Smith"},
    {"family": "Smith", "birthdate": "yesterday"},
    {"birthdate": "2015-01-01"},
    {"family": "Smith", "birthdate": "2015-01-01", "_include": "Patient:organization"},
    {"family": "Smith", "birthdate": "2015-01-01", "nickname": "Smudge"},
])
async def test_gp_refuses_bad_parameters_with_an_operation_outcome(sims, http, params):
    status, content_type, body = await get(http, f"{sims.gp.url}/Patient", **params)
    assert (status, content_type) == (400, "application/fhir+json")
    outcome = json.loads(body)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "error"
    assert "Smith" not in body


async def test_gp_refuses_repeated_parameters(sims, http):
    url = f"{sims.gp.url}/Patient?family=A&family=B&birthdate=2015-01-01"
    async with http.get(url) as response:
        assert response.status == 400


async def test_gp_demographic_search_and_organization_read(sims, http, population):
    child = fixture_child(population, "shielded")
    status, _, body = await get(http, f"{sims.gp.url}/Patient", family=child.family.lower(),
                                birthdate=f"eq{child.date_of_birth.isoformat()}",
                                given=child.given[0], **{"address-postalcode": child.home.postcode})
    assert status == 200
    assert json.loads(body)["total"] == 1
    status, _, body = await get(http, f"{sims.gp.url}/Organization/{child.practice.code}")
    assert (status, json.loads(body)["name"]) == (200, child.practice.name)
    status, _, body = await get(http, f"{sims.gp.url}/Organization/X00000")
    assert (status, json.loads(body)["issue"][0]["code"]) == (404, "not-found")


async def test_gp_capability_statement_says_whether_include_is_supported(population, http):
    async with run_simulators(population, include_supported=False) as sims:
        _, _, body = await get(http, f"{sims.gp.url}/metadata")
        capability = json.loads(body)
        child = fixture_child(population, "ordinary")
        _, _, bundle = await get(http, f"{sims.gp.url}/Patient",
                                 identifier=f"{NHS}|{child.nhs_number}",
                                 _include="Patient:general-practitioner")
    assert capability["resourceType"] == "CapabilityStatement"
    assert "searchInclude" not in capability["rest"][0]["resource"][0]
    assert len(json.loads(bundle)["entry"]) == 1


async def test_school_answers_pupils(sims, http, population):
    child = fixture_child(population, "school_only")
    status, content_type, body = await get(http, f"{sims.school.url}/api/v1/pupils",
                                           nhs_number=child.nhs_number)
    assert (status, content_type) == (200, "application/json")
    answer = json.loads(body)
    assert answer["count"] == 1
    pupil = answer["pupils"][0]
    assert pupil["legal_surname"] == child.family
    assert pupil["school"]["urn"] == child.school.urn
    assert [c["relationship"] for c in pupil["contacts"]] == [c.relationship for c in child.carers]
    assert pupil["home_postcode"] == child.home.postcode
    _, _, body = await get(http, f"{sims.school.url}/api/v1/pupils", surname=child.family,
                           date_of_birth=child.date_of_birth.isoformat())
    assert json.loads(body)["count"] == 1


async def test_council_answers_results(sims, http, population):
    child = fixture_child(population, "sensitive_consented")
    _, _, body = await get(http, f"{sims.council.url}/api/children", nhsNumber=child.nhs_number)
    (record,) = json.loads(body)["results"]
    assert record["shielded"] is False
    assert {i["type"] for i in record["involvements"]} == {"Social care", "Sexual health"}
    _, _, body = await get(http, f"{sims.council.url}/api/children",
                           nhsNumber=population.fixtures()["school_only"])
    assert json.loads(body) == {"results": [], "totalResults": 0}


@pytest.mark.parametrize(("system", "path", "params"), [
    ("school", "/api/v1/pupils", {}),
    ("school", "/api/v1/pupils", {"surname": "Smith"}),
    ("school", "/api/v1/pupils", {"nhs_number": "9990000018", "surname": "Smith"}),
    ("school", "/api/v1/pupils", {"surname": "Smith", "date_of_birth": "01/02/2015"}),
    ("council", "/api/children", {"familyName": "Smith"}),
    ("council", "/api/children", {"nhsNumber": "9990000018", "postcode": "LS6 1AA"}),
    ("council", "/api/children", {"surname": "Smith", "dateOfBirth": "2015-01-01"}),
])
async def test_rest_systems_refuse_bad_parameters(sims, http, system, path, params):
    status, content_type, body = await get(http, getattr(sims, system).url + path, **params)
    assert (status, content_type) == (400, "application/json")
    assert json.loads(body)["message"]


async def test_health_endpoints(sims, http):
    for url, expected in ((f"{sims.gp.url}/metadata", "CapabilityStatement"),
                          (f"{sims.school.url}/api/v1/health", "ok"),
                          (f"{sims.council.url}/api/health", "UP")):
        status, _, body = await get(http, url)
        assert status == 200
        assert expected in body


async def test_knobs_over_http(sims, http):
    url = f"{sims.school.url}/_sim/knobs"
    async with http.get(url) as response:
        assert await response.json() == {"latency_ms": 0.0, "error_rate": 0.0, "down": False,
                                         "malformed": None, "drop_keys": [],
                                         "unknown_status": None}
    async with http.post(url, json={"down": True, "malformed": "html"}) as response:
        assert response.status == 200
        assert (await response.json())["down"] is True
    assert sims.school.knobs.down
    assert sims.school.knobs.malformed is Malformed.HTML
    # The admin path is not subject to the knobs it sets.
    async with http.post(url, json={"down": False, "malformed": None}) as response:
        assert response.status == 200
    assert sims.school.knobs == Knobs()


@pytest.mark.parametrize("body", [
    {"latency_ms": -1}, {"latency_ms": "fast"}, {"error_rate": 1.5}, {"down": "yes"},
    {"malformed": "garbage"}, {"speed": 1}, ["down"], {"error_rate": True},
])
async def test_bad_knob_updates_are_refused_and_change_nothing(sims, http, body):
    url = f"{sims.council.url}/_sim/knobs"
    async with http.post(url, json={"latency_ms": 5, **body} if isinstance(body, dict)
                         else body) as response:
        assert response.status == 400
        assert (await response.json())["error"]
    assert sims.council.knobs == Knobs()


async def test_knob_updates_need_a_json_body(sims, http):
    async with http.post(f"{sims.gp.url}/_sim/knobs", data=b"down=1") as response:
        assert response.status == 400


def test_knobs_update_in_code():
    knobs = Knobs()
    knobs.update({"latency_ms": 20, "error_rate": 0.25, "malformed": "wrong_types"})
    assert knobs.to_json() == {"latency_ms": 20.0, "error_rate": 0.25, "down": False,
                               "malformed": "wrong_types", "drop_keys": [],
                               "unknown_status": None}
    with pytest.raises(KnobError, match="error_rate"):
        knobs.update({"latency_ms": 1, "error_rate": -0.1})
    assert knobs.latency_ms == 20.0
    knobs.reset()
    assert knobs == Knobs()


async def test_health_is_subject_to_down_and_errors(sims, http):
    sims.council.knobs.error_rate = 1.0
    status, _, body = await get(http, f"{sims.council.url}/api/health")
    assert status in (500, 503)
    assert json.loads(body)["status"] == status
    sims.council.knobs.update({"error_rate": 0, "down": True})
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await get(http, f"{sims.council.url}/api/health")


async def test_error_rate_fails_about_that_fraction_with_500_and_503(sims, http):
    sims.gp.knobs.error_rate = 0.5
    statuses = [(await get(http, f"{sims.gp.url}/metadata"))[0] for _ in range(60)]
    assert 10 < statuses.count(200) < 50
    assert {500, 503} <= set(statuses)


@pytest.mark.parametrize("how", list(Malformed))
async def test_malformed_answers_are_still_200(sims, http, population, how):
    sims.school.knobs.malformed = how
    status, content_type, body = await get(http, f"{sims.school.url}/api/v1/pupils",
                                           nhs_number=population.fixtures()["ordinary"])
    assert status == 200
    if how is Malformed.HTML:
        assert content_type == "text/html"
        return
    assert content_type == "application/json"
    if how is Malformed.BROKEN_JSON:
        with pytest.raises(json.JSONDecodeError):
            json.loads(body)
    elif how is Malformed.WRONG_SHAPE:
        assert isinstance(json.loads(body), list)
    else:
        pupil = json.loads(body)["pupils"][0]
        assert isinstance(pupil["legal_surname"], int)


async def test_requests_are_counted_per_route(sims, http):
    await get(http, f"{sims.gp.url}/Organization/X00000")
    await get(http, f"{sims.gp.url}/Organization/X00001")
    await get(http, f"{sims.gp.url}/_sim/knobs")
    assert sims.gp.hits == {"/Organization/{id}": 2}


async def test_standalone_process_serves_until_terminated(http, tmp_path):
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "connectors.simulators", "--size", "50", "--seed", "3",
        "--today", "2026-05-01", "--latency-ms", "1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        line = await asyncio.wait_for(process.stdout.readline(), timeout=15)
        announced = json.loads(line)
        assert set(announced) == {"gp", "school", "council", "youth_justice", "fixtures"}
        status, _, _ = await get(http, f"{announced['council']}/api/health")
        assert status == 200
        status, _, _ = await get(http, f"{announced['youth_justice']}/yj/v2/status")
        assert status == 200
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0
        assert await process.stderr.read() == b""
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
