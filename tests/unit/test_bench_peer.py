"""`bench.peer`'s pure helpers: the request body, the wrk script, the answer checks, the
commands it runs (no Node, no network)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from bench.peer import (
    QUERY,
    SYSTEMS,
    answer_problems,
    gateway_command,
    gateway_settings,
    lua_script,
    per_request,
    request_body,
    sample_child,
    variables,
)
from bench.upstreams import servable
from bench.wrkload import MARK
from connectors.simulators import Population
from connectors.simulators.records import age_on


@pytest.fixture(scope="module")
def population():
    return Population.generate(seed=2026, size=400, today=dt.date(2026, 6, 1))


def _answer(child, *, without=()):
    """What Hive answers for `child` (as the simulators hold it), less the systems in
    `without`."""
    known = {s: child.known_to(s) and s not in without for s in SYSTEMS}
    entries = []
    if known["gp"]:
        entries.append({"search": {"mode": "match"}, "resource": {
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number",
                            "value": child.nhs_number}]}})
        entries.append({"search": {"mode": "include"}, "resource": {
            "id": child.practice.code, "identifier": []}})
    pupils = [{"nhs_number": child.nhs_number, "school": {"urn": child.school.urn}}
              ] if known["school"] else []
    results = [{"nhsNumber": child.nhs_number}] if known["council"] else []
    people = [{"nhs_no": child.nhs_number}] if known["youth_justice"] else []
    return {"data": {"gp": {"entry": entries}, "school": {"pupils": pupils},
                     "council": {"results": results},
                     "youthJustice": {"data": {"youngPeople": people}}}}


def test_the_body_names_the_child_in_both_variables():
    body = json.loads(request_body(QUERY, "9990000001"))

    assert body["query"] == QUERY
    assert body["variables"] == variables("9990000001") == {
        "nhs": "9990000001", "identifier": "https://fhir.nhs.uk/Id/nhs-number|9990000001"}


def test_the_wrk_script_cycles_the_ids_with_the_token_and_prints_the_bench_summary(tmp_path):
    script = lua_script(ids=tmp_path / "ids.txt", token="tok.en", query=QUERY, threads=2)

    assert f"local ids_file, proofs_file = [==[{tmp_path / 'ids.txt'}]==], nil" in script
    assert "local scheme = [==[Bearer]==]" in script
    assert "local token = [==[tok.en]==]" in script
    assert 'thread:set("stride", 2)' in script
    assert "table.concat(pieces, child)" in script
    pieces = request_body(QUERY, MARK).split(MARK)
    assert len(pieces) == 3  # the NHS number goes in twice
    assert "local pieces = {" + ", ".join(f"[==[{p}]==]" for p in pieces) + "}" in script
    assert '"requests": %d' in script
    assert "%%" not in script


def test_a_full_answer_passes(population):
    for child in population.children[:60]:
        assert answer_problems(200, _answer(child), child) == []


def test_a_missing_record_is_named(population):
    child = next(c for c in population.children if c.known_to("council"))

    assert answer_problems(200, _answer(child, without=("council",)), child) == [
        "council: record missing"]


def test_a_record_of_another_child_is_not_the_childs(population):
    child, other = [c for c in population.children if c.known_to("school")][:2]
    answer = _answer(child)
    answer["data"]["school"]["pupils"][0]["nhs_number"] = other.nhs_number

    assert answer_problems(200, answer, child) == ["school: record missing"]


def test_refusals_errors_and_odd_shapes_are_problems(population):
    child = population.children[0]

    assert answer_problems(401, {"errors": [{"message": "Unauthenticated"}]}, child) == [
        "status 401"]
    assert answer_problems(200, {"data": None, "errors": [{"message": "x"}]}, child)[0].startswith(
        "errors:")
    assert answer_problems(200, {"data": {"gp": None}}, child)[0].startswith("unexpected shape")


def test_servable_children_are_the_benchs_under_18s_without_fixtures(population):
    numbers = servable(population)
    fixtures = set(population.fixtures().values())

    assert numbers
    assert not fixtures & set(numbers)
    assert all(age_on(population.child(n).date_of_birth, population.today) < 18 for n in numbers)


def test_the_sample_child_is_known_to_all_four_where_there_is_one(population):
    numbers = servable(population)
    nhs = sample_child(population, numbers)
    everywhere = [n for n in numbers
                  if all(population.child(n).known_to(s) for s in SYSTEMS)]

    assert nhs == (everywhere[0] if everywhere else numbers[0])


def test_per_request_divides_and_sorts():
    assert per_request({"/b": 40, "/a": 20}, 20) == {"/a": 1.0, "/b": 2.0}


def _node_project(root):
    package = root / "node_modules" / "@graphql-hive" / "gateway"
    package.mkdir(parents=True)
    (package / "package.json").write_text(json.dumps({"bin": {"hive-gateway": "./dist/bin.js"}}))
    return root


def test_the_gateway_runs_in_production_one_process_on_loopback(tmp_path):
    root = _node_project(tmp_path)
    command = gateway_command("/usr/bin/node", root, 4123)
    settings = gateway_settings(tmp_path / "s.graphql", "http://127.0.0.1:9/jwks")

    assert settings["NODE_ENV"] == "production"
    assert settings["SUPERGRAPH_PATH"] == str(tmp_path / "s.graphql")
    assert settings["JWKS_URL"] == "http://127.0.0.1:9/jwks"
    assert "PEER_COUNT_UPSTREAM" not in settings
    assert command[:3] == ["/usr/bin/node",
                           str(root / "node_modules/@graphql-hive/gateway/dist/bin.js"),
                           "supergraph"]
    assert command[-6:] == ["--host", "127.0.0.1", "--port", "4123", "--fork", "1"]


def test_the_counting_gateway_says_so(tmp_path):
    settings = gateway_settings(tmp_path / "s.graphql", "http://127.0.0.1:9/jwks",
                                count_upstream=True)

    assert settings["PEER_COUNT_UPSTREAM"] == "1"
