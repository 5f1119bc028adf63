"""The simulated youth justice system, the multi_service fixture and the conformance knobs.

Self-contained (its own population and simulators), so it depends only on
`connectors.simulators`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re

import pytest

from connectors.simulators import FIXTURE_KEYS, KnobError, Knobs, Population, run_simulators
from connectors.simulators.population import age_on
from connectors.simulators.youth_justice import parse_uk_date
from tests.connectors.helpers import fixture_child, get

TODAY = dt.date(2026, 5, 1)
NHS = "https://fhir.nhs.uk/Id/nhs-number"
YJ = "/yj/v2/young-people"
PROGRAMMES = {"Referral order", "Youth rehabilitation order", "Out of court disposal",
              "Bail support"}
UNKNOWN_NHS = "9990000018"


@pytest.fixture(scope="module")
def population():
    return Population.generate(seed=2026, size=3_000, today=TODAY)


@pytest.fixture
async def sims(population):
    async with run_simulators(population, shutdown_timeout=0.2) as running:
        yield running




def uk(day):
    return day.strftime("%d/%m/%Y")


# The youth justice wire format


async def test_a_young_person_in_the_systems_own_shape_and_uk_dates(sims, http, population):
    child = fixture_child(population, "multi_service")
    status, content_type, body = await get(http, sims.youth_justice.url + YJ,
                                           nhs=child.nhs_number)
    assert (status, content_type) == (200, "application/json")
    record = child.youth_justice
    (order,) = record.orders
    assert json.loads(body) == {"data": {"youngPeople": [{
        "ref": record.ref,
        "nhs_no": child.nhs_number,
        "name": {"first": child.given[0], "middle": None, "last": child.family},
        "dob": uk(child.date_of_birth),
        "restricted": "N",
        "orders": [{"programme": "Referral order", "category": "Youth justice service",
                    "worker_phone": order.contact, "sensitive": "N", "consent": "Y"}],
    }]}, "count": 1}
    assert re.fullmatch(r"YJ-\d{6}", record.ref)
    assert re.fullmatch(r"0113 496 0\d{3}", order.contact)


async def test_middle_names_are_one_string_and_flags_are_y_or_n(sims, http, population):
    child = next(c for c in population.members("youth_justice") if len(c.given) > 1)
    _, _, body = await get(http, sims.youth_justice.url + YJ, nhs=child.nhs_number)
    (person,) = json.loads(body)["data"]["youngPeople"]
    assert person["name"] == {"first": child.given[0], "middle": " ".join(child.given[1:]),
                              "last": child.family}
    assert re.fullmatch(r"\d{2}/\d{2}/\d{4}", person["dob"])
    assert person["restricted"] in ("Y", "N")
    assert all(order[flag] in ("Y", "N")
               for order in person["orders"] for flag in ("sensitive", "consent"))


async def test_search_by_the_youth_justice_parameter_names(sims, http, population):
    child = fixture_child(population, "multi_service")
    url = sims.youth_justice.url + YJ
    exact = {"surname": f" {child.family.upper()} ", "birth_date": uk(child.date_of_birth)}
    for extra in ({}, {"forename": child.given[0].lower()},
                  {"postcode": child.home.postcode.replace(" ", "").lower()},
                  {"forename": child.given[0], "postcode": child.home.postcode}):
        status, _, body = await get(http, url, **exact, **extra)
        assert status == 200
        answer = json.loads(body)
        assert answer["count"] == 1
        assert answer["data"]["youngPeople"][0]["nhs_no"] == child.nhs_number
    for miss in ({"forename": "Nobody"}, {"postcode": "LS1 1AA"}):
        _, _, body = await get(http, url, **exact, **miss)
        assert json.loads(body) == {"data": {"youngPeople": []}, "count": 0}
    day_before = uk(child.date_of_birth - dt.timedelta(days=1))
    _, _, body = await get(http, url, surname=child.family, birth_date=day_before)
    assert json.loads(body)["count"] == 0


async def test_children_unknown_to_youth_justice_get_an_empty_list(sims, http, population):
    for nhs in (population.fixtures()["ordinary"], population.fixtures()["school_only"],
                UNKNOWN_NHS):
        status, _, body = await get(http, sims.youth_justice.url + YJ, nhs=nhs)
        assert status == 200
        assert json.loads(body) == {"data": {"youngPeople": []}, "count": 0}
    ordinary = fixture_child(population, "ordinary")
    _, _, body = await get(http, sims.youth_justice.url + YJ, surname=ordinary.family,
                           birth_date=uk(ordinary.date_of_birth))
    assert json.loads(body)["count"] == 0


@pytest.mark.parametrize(("params", "named"), [
    ({}, "nhs"),
    ({"surname": "Smith"}, "birth_date"),
    ({"surname": "Smith", "birth_date": "2012-03-14"}, "birth_date"),
    ({"surname": "Smith", "birth_date": "31/02/2012"}, "birth_date"),
    ({"surname": "Smith", "birth_date": "4/3/2012"}, "birth_date"),
    ({"surname": "Smith", "birth_date": "14/03/12"}, "birth_date"),
    ({"nhs": UNKNOWN_NHS, "surname": "Smith"}, "nhs"),
    ({"nhsNumber": UNKNOWN_NHS}, "nhsNumber"),
    ({"familyName": "Smith", "dateOfBirth": "14/03/2012"}, "dateOfBirth"),
])
async def test_bad_queries_get_a_400_fault_naming_the_parameter(sims, http, params, named):
    status, content_type, body = await get(http, sims.youth_justice.url + YJ, **params)
    assert (status, content_type) == (400, "application/json")
    fault = json.loads(body)["fault"]
    assert fault["code"] == 400
    assert named in fault["text"]
    assert "Smith" not in body
    for value in params.values():
        if "/" in value or "-" in value:
            assert value not in body


async def test_a_repeated_parameter_is_refused(sims, http):
    url = f"{sims.youth_justice.url}{YJ}?surname=A&surname=B&birth_date=14/03/2012"
    async with http.get(url) as response:
        assert response.status == 400
        assert "surname" in (await response.json())["fault"]["text"]


async def test_status_endpoint_and_four_systems_served(sims, http):
    status, _, body = await get(http, f"{sims.youth_justice.url}/yj/v2/status")
    assert (status, json.loads(body)) == (200, {"service": "up"})
    assert list(sims.urls()) == ["gp", "school", "council", "youth_justice"]
    assert len(set(sims.urls().values())) == 4
    assert sims.youth_justice.hits == {"/yj/v2/status": 1}


def test_uk_dates_are_strict():
    assert parse_uk_date("14/03/2012") == dt.date(2012, 3, 14)
    assert parse_uk_date("29/02/2024") == dt.date(2024, 2, 29)
    for text in ("2012-03-14", "14/3/2012", "14-03-2012", "29/02/2025", "14/03/2012 ",
                 "\u0661\u0664/03/2012", ""):
        with pytest.raises(ValueError, match="DD/MM/YYYY"):
            parse_uk_date(text)


# The youth justice records and the multi_service fixture


def test_about_three_percent_of_ten_to_seventeens_have_a_plausible_record(population):
    def age(child):
        return age_on(child.date_of_birth, TODAY)

    members = population.members("youth_justice")
    eligible = [c for c in population.children if 10 <= age(c) <= 17]
    assert 0.02 < len(members) / len(eligible) < 0.05
    assert all(10 <= age(c) <= 17 for c in members)
    assert len({c.youth_justice.ref for c in members}) == len(members)
    orders = [order for c in members for order in c.youth_justice.orders]
    assert all(1 <= len(c.youth_justice.orders) <= 2 for c in members)
    assert {order.kind for order in orders} == PROGRAMMES
    assert {order.name for order in orders} == {"Youth justice service"}
    assert not any(order.sensitive for order in orders)
    assert population.lookup("youth_justice", members[0].nhs_number) == members[0]
    assert population.lookup("youth_justice", population.fixtures()["ordinary"]) is None


def test_restricted_is_exactly_the_councils_shielding(population):
    members = population.members("youth_justice")
    for child in members:
        shielded = child.council is not None and child.council.shielded
        assert child.youth_justice.restricted is shielded
    assert any(child.youth_justice.restricted for child in members)


def test_multi_service_is_known_to_all_four_systems(population):
    fixtures = population.fixtures()
    assert tuple(fixtures) == FIXTURE_KEYS
    assert FIXTURE_KEYS[-1] == "multi_service"
    assert len(set(fixtures.values())) == len(FIXTURE_KEYS)
    child = population.child(fixtures["multi_service"])
    assert all(child.known_to(s) for s in ("gp", "school", "council", "youth_justice"))
    assert age_on(child.date_of_birth, TODAY) == 15
    assert not child.council.shielded
    assert not child.youth_justice.restricted
    assert child.council.involvements
    assert not any(item.sensitive for item in child.council.involvements)
    assert [order.kind for order in child.youth_justice.orders] == ["Referral order"]
    for system in ("gp", "school", "council", "youth_justice"):
        assert population.search(system, child.family, child.date_of_birth) == [child]


async def test_multi_service_over_http_has_one_name_and_date_of_birth(sims, http, population):
    child = fixture_child(population, "multi_service")
    nhs = child.nhs_number
    _, _, gp = await get(http, f"{sims.gp.url}/Patient", identifier=f"{NHS}|{nhs}")
    _, _, school = await get(http, f"{sims.school.url}/api/v1/pupils", nhs_number=nhs)
    _, _, council = await get(http, f"{sims.council.url}/api/children", nhsNumber=nhs)
    _, _, yj = await get(http, sims.youth_justice.url + YJ, nhs=nhs)
    (patient,) = (entry["resource"] for entry in json.loads(gp)["entry"])
    (pupil,) = json.loads(school)["pupils"]
    (person,) = json.loads(council)["results"]
    (young,) = json.loads(yj)["data"]["youngPeople"]
    names = {
        (patient["name"][0]["family"], tuple(patient["name"][0]["given"])),
        (pupil["legal_surname"], (pupil["legal_forename"], *pupil["middle_names"].split())),
        (person["surname"], tuple(person["forenames"])),
        (young["name"]["last"], (young["name"]["first"], *(young["name"]["middle"] or "").split())),
    }
    assert names == {(child.family, child.given)}
    iso = child.date_of_birth.isoformat()
    assert (patient["birthDate"], pupil["date_of_birth"], person["dateOfBirth"]) == (iso,) * 3
    assert young["dob"] == uk(child.date_of_birth)
    assert person["shielded"] is False
    assert person["involvements"]
    assert all(item["sensitive"] is False for item in person["involvements"])
    assert young["restricted"] == "N"
    assert [order["programme"] for order in young["orders"]] == ["Referral order"]


async def test_a_restricted_young_person_is_shielded_by_the_council(sims, http, population):
    child = next(c for c in population.members("youth_justice") if c.youth_justice.restricted)
    _, _, yj = await get(http, sims.youth_justice.url + YJ, nhs=child.nhs_number)
    _, _, council = await get(http, f"{sims.council.url}/api/children",
                              nhsNumber=child.nhs_number)
    assert json.loads(yj)["data"]["youngPeople"][0]["restricted"] == "Y"
    assert json.loads(council)["results"][0]["shielded"] is True


# Adding youth justice changed nothing the other three systems know.

_EXISTING_FIELDS = ("nhs_number", "given", "family", "date_of_birth", "gender", "home",
                    "carers", "practice", "school", "council")
# Computed with the code before youth justice existed (three systems, seven fixtures).
_BEFORE_FIXTURES = {
    "ordinary": "9991504494", "shielded": "9990716633", "sensitive_consented": "9993311758",
    "sensitive_unconsented": "9992716452", "adult_no_consent": "9993369675",
    "adult_consented": "9991879447", "school_only": "9995759608",
}
_BEFORE_DIGESTS = {
    (2026, 2000, dt.date(2026, 11, 29)):
        "44bb98bd489d87d427a5ab59df7c19e8989e1bd74b9d354e6ecbe606f672ed7c",
    (3, 50, dt.date(2026, 5, 1)):
        "395721481567b7c7d7b251b821153905e0d2160fbf5fed5931a4b76f39b27f72",
    (11, 400, dt.date(2026, 5, 1)):
        "b3ca14d3c8cda3a8bee2e47cf04cb83ce882454439c29daf6337598a5bf8d467",
}


def _digest(children):
    text = "\n".join(repr(tuple(getattr(child, name) for name in _EXISTING_FIELDS))
                     for child in children)
    return hashlib.sha256(text.encode()).hexdigest()


def test_existing_fixtures_and_children_are_unchanged():
    population = Population.generate(seed=2026, size=2000, today=dt.date(2026, 11, 29))
    fixtures = population.fixtures()
    assert {key: fixtures[key] for key in _BEFORE_FIXTURES} == _BEFORE_FIXTURES
    assert fixtures["multi_service"] == "9993342254"
    assert len(population) == 2000
    assert _digest(population.children) == _BEFORE_DIGESTS[2026, 2000, dt.date(2026, 11, 29)]


@pytest.mark.parametrize(("seed", "size", "day"), [(3, 50, TODAY), (11, 400, TODAY)])
def test_other_seeds_keep_their_children_too(seed, size, day):
    population = Population.generate(seed=seed, size=size, today=day)
    assert _digest(population.children[:size]) == _BEFORE_DIGESTS[seed, size, day]
    child = population.child(population.fixtures()["multi_service"])
    assert all(child.known_to(s) for s in ("gp", "school", "council", "youth_justice"))
    assert age_on(child.date_of_birth, day) == 15
    # Too small to hold a fitting child, the 50 get one more, at the end.
    assert len(population) == (size + 1 if size == 50 else size)
    assert population.search("council", child.family, child.date_of_birth) == [child]


# The conformance knobs


async def test_drop_keys_removes_the_shielding_and_consent_flags(sims, http, population):
    child = fixture_child(population, "sensitive_consented")
    url = f"{sims.council.url}/api/children"
    sims.council.knobs.drop_keys = ("shielded", "consentRecorded")
    _, _, body = await get(http, url, nhsNumber=child.nhs_number)
    (person,) = json.loads(body)["results"]
    assert "shielded" not in person
    assert person["involvements"]
    assert not any("consentRecorded" in item for item in person["involvements"])
    assert person["retentionConsent"] is False

    restricted = next(c for c in population.members("youth_justice")
                      if c.youth_justice.restricted)
    sims.youth_justice.knobs.drop_keys = ("restricted",)
    status, content_type, body = await get(http, sims.youth_justice.url + YJ,
                                           nhs=restricted.nhs_number)
    assert (status, content_type) == (200, "application/json")
    (young,) = json.loads(body)["data"]["youngPeople"]
    assert "restricted" not in young
    assert young["nhs_no"] == restricted.nhs_number


async def test_drop_keys_over_http_applies_to_fhir_and_not_to_errors(sims, http, population):
    url = f"{sims.gp.url}/_sim/knobs"
    async with http.post(url, json={"drop_keys": ["birthDate"]}) as response:
        assert response.status == 200
        assert (await response.json())["drop_keys"] == ["birthDate"]
    nhs = population.fixtures()["ordinary"]
    status, content_type, body = await get(http, f"{sims.gp.url}/Patient",
                                           identifier=f"{NHS}|{nhs}")
    assert (status, content_type) == (200, "application/fhir+json")
    assert "birthDate" not in json.loads(body)["entry"][0]["resource"]
    sims.gp.knobs.drop_keys = ("issue",)
    _, _, body = await get(http, f"{sims.gp.url}/Patient", family="Smith")
    assert json.loads(body)["issue"]


async def test_drop_keys_then_malformed(sims, http, population):
    sims.youth_justice.knobs.update({"drop_keys": ["orders"], "malformed": "wrong_types"})
    _, _, body = await get(http, sims.youth_justice.url + YJ,
                           nhs=population.fixtures()["multi_service"])
    young = json.loads(body)["data"]["youngPeople"][0]
    assert "orders" not in young
    assert isinstance(young["nhs_no"], int)


@pytest.mark.parametrize(("system", "path", "param", "expected"), [
    ("council", "/api/children", "nhsNumber",
     {"status": 404, "error": "Not Found", "message": "no record for this NHS number"}),
    ("youth_justice", YJ, "nhs",
     {"fault": {"code": 404, "text": "no record for this NHS number"}}),
    ("school", "/api/v1/pupils", "nhs_number",
     {"error": "not_found", "message": "no record for this NHS number"}),
])
async def test_unknown_status_refuses_an_unknown_nhs_number(sims, http, population, system,
                                                            path, param, expected):
    simulator = getattr(sims, system)
    simulator.knobs.unknown_status = 404
    status, content_type, body = await get(http, simulator.url + path, **{param: UNKNOWN_NHS})
    assert (status, content_type, json.loads(body)) == (404, "application/json", expected)
    assert UNKNOWN_NHS not in body
    # A child the system knows is still answered, and a search still finds nobody politely.
    status, _, _ = await get(http, simulator.url + path,
                             **{param: population.fixtures()["multi_service"]})
    assert status == 200


async def test_unknown_status_in_the_gp_and_for_a_search(sims, http, population):
    sims.gp.knobs.unknown_status = 404
    school_only = population.fixtures()["school_only"]
    status, content_type, body = await get(http, f"{sims.gp.url}/Patient",
                                           identifier=f"{NHS}|{school_only}")
    assert (status, content_type) == (404, "application/fhir+json")
    outcome = json.loads(body)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "not-found"
    status, _, body = await get(http, f"{sims.gp.url}/Patient", family="Nobody",
                                birthdate="2015-01-01")
    assert (status, json.loads(body)["total"]) == (200, 0)
    sims.youth_justice.knobs.unknown_status = 503
    status, _, body = await get(http, sims.youth_justice.url + YJ, surname="Nobody",
                                birth_date="01/01/2015")
    assert (status, json.loads(body)["count"]) == (200, 0)
    status, _, body = await get(http, sims.youth_justice.url + YJ, nhs=UNKNOWN_NHS)
    assert (status, json.loads(body)["fault"]["code"]) == (503, 503)


async def test_unknown_status_may_be_a_code_without_a_name(sims, http):
    sims.council.knobs.unknown_status = 499
    status, _, body = await get(http, f"{sims.council.url}/api/children",
                                nhsNumber=UNKNOWN_NHS)
    assert (status, json.loads(body)["status"], json.loads(body)["error"]) == (499, 499, "Error")


@pytest.mark.parametrize("body", [
    {"drop_keys": "shielded"}, {"drop_keys": [""]}, {"drop_keys": [1]},
    {"drop_keys": ["k"] * 33}, {"drop_keys": None}, {"unknown_status": 200},
    {"unknown_status": 600}, {"unknown_status": "404"}, {"unknown_status": True},
    {"unknown_status": 404.0},
])
async def test_bad_conformance_knobs_are_refused_and_change_nothing(sims, http, body):
    url = f"{sims.youth_justice.url}/_sim/knobs"
    async with http.post(url, json={"unknown_status": 404, **body}) as response:
        assert response.status == 400
        assert next(iter(body)) in (await response.json())["error"]
    assert sims.youth_justice.knobs == Knobs()


def test_conformance_knobs_in_code():
    knobs = Knobs()
    knobs.update({"drop_keys": ("shielded", "restricted"), "unknown_status": 404})
    assert knobs.to_json()["drop_keys"] == ["shielded", "restricted"]
    assert knobs.to_json()["unknown_status"] == 404
    knobs.update({"unknown_status": None, "drop_keys": []})
    assert (knobs.drop_keys, knobs.unknown_status) == ((), None)
    with pytest.raises(KnobError, match="unknown_status"):
        knobs.update({"drop_keys": ["x"], "unknown_status": 302})
    assert knobs.drop_keys == ()
    knobs.update({"drop_keys": ["x"], "unknown_status": 500, "down": True,
                  "malformed": "html"})
    knobs.reset()
    assert knobs == Knobs()
