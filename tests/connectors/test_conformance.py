"""The conformance kit against the simulators: conformant systems pass, each fault fails its check.

Faults come from the simulators' knobs (a flag left out, a wrong status for
an unknown child, garbage, slowness, down) and from manifests written to
`tmp_path`; each must fail the check it belongs to, by name.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from connectors.conformance import CHECK_NAMES, DEFAULT_UNKNOWN_NHS, run_checks
from connectors.conformance.calls import GRACE_SECONDS, Calls
from connectors.conformance.explicit import facts_evidence, service_items, shielding_problem
from connectors.conformance.results import CheckResult
from connectors.manifest import BUILTIN_DIR
from gateway.core.facts import Service, SourceFacts
from gateway.web.cli import main as cli_main

BUILTINS = sorted(path.stem for path in BUILTIN_DIR.glob("*.toml"))
EXAMPLES = ("ordinary", "multi_service", "shielded", "sensitive_consented", "school_only")
REPO = Path(__file__).resolve().parents[2]


def known_to(population, system, keys=EXAMPLES):
    """Fixture children's NHS numbers that `system` knows."""
    fixtures = population.fixtures()
    numbers = [fixtures[key] for key in keys if population.lookup(system, fixtures[key])]
    assert numbers, f"no example child known to {system}"
    return numbers


def failures(results):
    return {result.name: result.reason for result in results if not result.passed}


def write_manifest(tmp_path, builtin, *, replace=(), prepend=""):
    """A copy of a built-in manifest, with text replaced (each must be found) or prepended."""
    text = (BUILTIN_DIR / f"{builtin}.toml").read_text(encoding="utf-8")
    for old, new in replace:
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / f"{builtin}-variant.toml"
    path.write_text(prepend + text, encoding="utf-8")
    return str(path)


def test_the_builtin_manifests_are_all_checked():
    assert {"gp", "school", "council", "youth_justice"} <= set(BUILTINS)


def test_the_default_unknown_child_is_nobody_in_the_population(population):
    assert population.child(DEFAULT_UNKNOWN_NHS) is None


@pytest.mark.parametrize("name", BUILTINS)
async def test_every_builtin_manifest_passes_against_its_simulator(sims, population, name):
    results = await run_checks(name, getattr(sims, name).url, known_to(population, name), None)

    assert [result.name for result in results] == list(CHECK_NAMES)
    assert failures(results) == {}


async def test_a_passing_run_says_what_it_checked(sims, population):
    known = known_to(population, "council")
    results = {r.name: r.reason for r in await run_checks("council", sims.council.url, known,
                                                          None)}

    assert results["manifest"].startswith("council.toml: rest_json system 'council'")
    assert results["known_child"].startswith(f"{len(known)} children found")
    assert results["unknown_child"] == f"{DEFAULT_UNKNOWN_NHS}: not known, as expected"
    assert results["search"].startswith(f"{known[0]} found by family name and date of birth")
    assert "state shielding as true or false" in results["shielding_explicit"]
    assert "state sensitive and consent_recorded" in results["consent_explicit"]
    assert "within the 2s timeout" in results["latency"]


async def test_checks_a_system_does_not_need_pass_saying_so(sims, population):
    results = {r.name: r for r in await run_checks("school", sims.school.url,
                                                   known_to(population, "school"), None)}

    assert results["shielding_explicit"].reason == "system does not record shielding"
    assert results["consent_explicit"].reason == "no services"


NOT_ANSWERING = {"health", "known_child", "unknown_child", "search", "shielding_explicit",
                 "consent_explicit"}


@pytest.mark.parametrize(("knobs", "failing", "check", "says"), [
    pytest.param({"drop_keys": ["shielded"]}, {"known_child", "search", "shielding_explicit"},
                 "shielding_explicit", "results[].shielded: required, but absent",
                 id="shielding-flag-missing"),
    pytest.param({"drop_keys": ["consentRecorded"]}, {"known_child", "search", "consent_explicit"},
                 "consent_explicit", "involvements[].consentRecorded: required, but absent",
                 id="consent-flag-missing"),
    pytest.param({"malformed": "wrong_types"}, {"health", "known_child", "search",
                                                "shielding_explicit", "consent_explicit"},
                 "known_child", "malformed answer: results[].nhsNumber: expected a valid NHS",
                 id="wrong-types"),
    pytest.param({"unknown_status": 500}, {"unknown_child"},
                 "unknown_child", f"{DEFAULT_UNKNOWN_NHS}: HTTP 500", id="unknown-is-500"),
    pytest.param({"down": True}, NOT_ANSWERING, "health", "connection failed", id="down"),
    pytest.param({"malformed": "broken_json"}, NOT_ANSWERING, "health", "not valid JSON",
                 id="broken-json"),
    pytest.param({"malformed": "html"}, NOT_ANSWERING, "health", "answer is not JSON",
                 id="html"),
    pytest.param({"malformed": "wrong_shape"}, NOT_ANSWERING, "known_child",
                 "malformed answer: answer: expected an object", id="wrong-shape"),
])
async def test_each_fault_fails_its_own_check(sims, population, knobs, failing, check, says):
    sims.council.knobs.update(knobs)
    known = known_to(population, "council", ("ordinary",))

    results = await run_checks("council", sims.council.url, known, None)

    assert [result.name for result in results] == list(CHECK_NAMES)
    assert set(failures(results)) == failing
    assert says in failures(results)[check]


@pytest.mark.parametrize(("how", "says"), [("broken_json", "answer is not valid JSON"),
                                           ("html", "answer is not JSON")])
async def test_garbage_fails_health_and_known_child_saying_it_is_not_json(sims, population,
                                                                           how, says):
    sims.council.knobs.update({"malformed": how})
    (nhs,) = known_to(population, "council", ("ordinary",))

    found = failures(await run_checks("council", sims.council.url, [nhs], None))

    assert found["health"] == says
    assert found["known_child"] == f"{nhs}: {says}"
    assert found["search"] == "not run: known_child failed"


@pytest.mark.parametrize(("key", "check", "says"), [
    ("restricted", "shielding_explicit", "data.youngPeople[].restricted: required, but absent"),
    ("consent", "consent_explicit", "orders[].consent: required, but absent"),
])
async def test_a_flag_left_out_by_youth_justice_fails_its_check(sims, population, key, check,
                                                                 says):
    sims.youth_justice.knobs.update({"drop_keys": [key]})
    known = known_to(population, "youth_justice", ("multi_service",))

    found = failures(await run_checks("youth_justice", sims.youth_justice.url, known, None))

    assert says in found[check]


async def test_a_fact_the_manifest_provides_but_the_system_leaves_out_fails_known_child(
        sims, population):
    sims.gp.knobs.update({"drop_keys": ["generalPractitioner"]})
    (nhs,) = known_to(population, "gp", ("ordinary",))

    found = failures(await run_checks("gp", sims.gp.url, [nhs], None))

    assert found == {"known_child": f"{nhs}: does not state practice"}


async def test_fhir_wrong_types_fail_known_child_naming_the_path(sims, population):
    sims.gp.knobs.update({"malformed": "wrong_types"})

    found = failures(await run_checks("gp", sims.gp.url, known_to(population, "gp",
                                                                  ("ordinary",)), None))

    assert "CapabilityStatement.fhirVersion" in found["health"]
    assert "malformed answer: Bundle.entry[]" in found["known_child"]


async def test_too_slow_fails_latency_and_the_calls_that_timed_out(sims, population, tmp_path):
    manifest = write_manifest(tmp_path, "council",
                              replace=[("timeout_seconds = 2.0", "timeout_seconds = 0.2")])
    sims.council.knobs.update({"latency_ms": 400})
    known = known_to(population, "council", ("ordinary",))

    started = time.perf_counter()
    found = failures(await run_checks(manifest, sims.council.url, known, None))

    assert time.perf_counter() - started < 5 * (0.2 + GRACE_SECONDS)
    assert found["latency"].startswith("no answer within 0.2s to 4 of 4 calls")
    assert found["health"] == "no answer within 0.2s"
    assert found["known_child"] == f"{known[0]}: no answer within 0.2s"
    assert found["unknown_child"].startswith(f"{DEFAULT_UNKNOWN_NHS}: no answer within 0.2s")


async def test_slow_but_within_the_timeout_passes_latency_reporting_the_slowest(sims, population):
    sims.council.knobs.update({"latency_ms": 60})

    results = await run_checks("council", sims.council.url,
                               known_to(population, "council", ("ordinary",)), None)

    latency = results[-1]
    assert latency.passed
    assert latency.reason.startswith("slowest of 6 calls took ")
    slowest_ms = int(latency.reason.split(" took ")[1].split(" ms")[0])
    assert 60 <= slowest_ms < 2_000


async def test_the_kit_bounds_a_call_that_ignores_its_timeout():
    calls = Calls(timeout_seconds=0.05)

    started = time.perf_counter()
    outcome = await calls.run("lookup", asyncio.sleep(30))

    assert time.perf_counter() - started < 0.05 + GRACE_SECONDS + 0.5
    assert outcome.failure == "no answer within 0.05s"
    assert calls.made[0].timed_out


NHS = "9991504494"  # a valid NHS number (the ordinary fixture in the test population)


@pytest.mark.parametrize(("facts", "shielding", "services"), [
    (SourceFacts(NHS, shielded=False, services=(Service("k", "n", True, False),)),
     None, (1, None)),
    (SourceFacts(NHS, shielded=None, services=None), "shielding not stated as true or false",
     (0, None)),
    (SourceFacts(NHS, shielded=True, services=(Service("k", "n", True, None),)), None,
     (1, "a service item does not state sensitive and consent_recorded")),
])
def test_a_plugins_facts_are_read_for_the_explicit_flags(facts, shielding, services):
    evidence = facts_evidence([(NHS, facts)])
    ((origin, record),) = evidence.records
    assert origin == NHS

    assert shielding_problem(evidence, record) == shielding
    assert service_items(evidence, record) == services


def test_a_result_is_always_one_line():
    assert CheckResult("health", False, "HTTP 500\nsecond").line() == "FAIL health: HTTP 500 second"


async def test_an_invalid_manifest_fails_naming_the_key_and_nothing_else_runs(tmp_path, sims):
    manifest = write_manifest(tmp_path, "council", prepend='colour = "blue"\n')

    results = await run_checks(manifest, sims.council.url, [NHS], None)

    assert results[0].line() == ("FAIL manifest: manifest council-variant.toml: colour: "
                                 "Extra inputs are not permitted")
    assert [r.reason for r in results[1:]] == ["not run: manifest failed"] * 7


@pytest.mark.parametrize(("reference", "base_url", "says"), [
    ("no-such-system", "http://127.0.0.1:9", "no such file"),
    ("council", None, "base_url: not set (give --base-url)"),
    ("council", "ftp://127.0.0.1", "expected an http:// or https:// URL"),
])
async def test_a_manifest_that_cannot_be_used_fails_the_manifest_check(reference, base_url,
                                                                        says):
    results = await run_checks(reference, base_url, [], None)

    assert not results[0].passed
    assert says in results[0].reason
    assert failures(results).keys() == set(CHECK_NAMES)


async def test_without_a_known_child_known_child_fails_and_what_needs_one_does_not_run(sims):
    found = failures(await run_checks("council", sims.council.url, [], None))

    assert found == {"known_child": "give --nhs with a child the system knows",
                     "search": "not run: known_child failed",
                     "shielding_explicit": "not run: known_child failed",
                     "consent_explicit": "not run: known_child failed"}


async def test_a_child_the_system_does_not_know_fails_known_child(sims, population):
    school_only = population.fixtures()["school_only"]

    found = failures(await run_checks("council", sims.council.url, [school_only], None))

    assert found["known_child"] == (f"{school_only}: not known to the system "
                                    "(give a child it knows)")


async def test_an_unknown_child_the_system_knows_fails_unknown_child(sims, population):
    ordinary, shielded = known_to(population, "council", ("ordinary", "shielded"))

    found = failures(await run_checks("council", sims.council.url, [ordinary], shielded))

    assert found == {"unknown_child": f"{shielded}: the system answered a record; give "
                                      "--unknown-nhs a number it does not know"}


async def test_reasons_never_hold_a_childs_data(sims, population):
    known = known_to(population, "council")
    children = [population.child(nhs) for nhs in known]
    secrets = {value for child in children for value in (
        child.family, *child.given, child.home.postcode, child.date_of_birth.isoformat(),
        *child.home.lines)}
    reasons = []
    for knobs in ({}, {"malformed": "wrong_types"}, {"drop_keys": ["shielded", "sensitive"]},
                  {"unknown_status": 404}):
        sims.council.knobs.reset()
        sims.council.knobs.update(knobs)
        reasons += [r.reason for r in await run_checks("council", sims.council.url, known, None)]

    leaked = sorted(secret for secret in secrets if any(secret in reason for reason in reasons))
    assert leaked == []


async def run_cli(argv):
    """`cli_main` in a thread: it runs its own event loop, as the command does."""
    return await asyncio.to_thread(cli_main, argv)


async def test_the_command_prints_one_line_per_check_and_exits_0_when_all_pass(
        sims, population, capsys):
    known = known_to(population, "council", ("ordinary", "multi_service"))
    argv = ["connector", "check", "council", "--base-url", sims.council.url]
    for nhs in known:
        argv += ["--nhs", nhs]

    code = await run_cli(argv)

    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert [line.split(":")[0] for line in lines[:-1]] == [f"PASS {n}" for n in CHECK_NAMES]
    assert lines[-1] == "connector check passed: all 8 checks passed"


async def test_the_command_exits_1_naming_the_failed_checks(sims, population, capsys):
    sims.council.knobs.update({"unknown_status": 500})
    (nhs,) = known_to(population, "council", ("ordinary",))
    spaced = f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}"

    code = await run_cli(["connector", "check", "council", "--base-url", sims.council.url,
                          "--nhs", spaced])

    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines[3] == (f"FAIL unknown_child: {DEFAULT_UNKNOWN_NHS}: HTTP 500, where an empty "
                        "answer (not known) was expected")
    assert lines[-1] == "connector check failed: 1 of 8 checks failed (unknown_child)"


@pytest.mark.parametrize("argv", [
    ["connector"],
    ["connector", "check"],
    ["connector", "check", "council", "--nhs", "9991504495"],
    ["connector", "check", "council", "--unknown-nhs", "12345"],
    ["connector", "check", "council", "--base-url", "127.0.0.1:8000"],
])
def test_bad_usage_exits_2(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        cli_main(argv)

    assert exited.value.code == 2
    assert capsys.readouterr().out == ""


async def test_python_dash_m_runs_the_command(sims, population):
    (nhs,) = known_to(population, "school", ("ordinary",))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.web.cli", "connector", "check", "school",
        "--base-url", sims.school.url, "--nhs", nhs, "--unknown-nhs", DEFAULT_UNKNOWN_NHS,
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)

    lines = out.decode().splitlines()
    assert process.returncode == 0, err.decode()
    assert len(lines) == len(CHECK_NAMES) + 1
    assert lines[2] == f"PASS known_child: 1 child found, every provided fact stated: {nhs}"
