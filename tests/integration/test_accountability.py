"""Audit before release, the subject access report, harvesting budgets, rate limits, alerts."""

import json
from pathlib import Path

import pytest

from gateway.accountability.audit import child_pseudonym
from tests.integration.harness import ALL_SCOPES, FIND_QUERY, running_gateway
from tests.integration.support import personal_strings, record

REPORT = "query($n: String!) { accessReport(nhsNumber: $n) { at organisation purpose fields } }"


def pseudonym(gateway, nhs):
    return child_pseudonym(gateway.settings.audit.pseudonym_secret.get_secret_value(), nhs)


async def events_for(gateway, fixture):
    nhs = gateway.fixtures.get(fixture, fixture)
    return await gateway.runtime.accountability.audit.for_child(pseudonym(gateway, nhs))


async def test_a_release_is_audited_with_fields_sources_and_purpose(store_gateway):
    gateway = store_gateway
    await gateway.child("ordinary", scopes="child.identity.read child.education.read",
                        purpose="EDUCATION", case="CASE-3",
                        fields="name { family } education { school { name } } address { lines }")
    [event] = await events_for(gateway, "ordinary")
    assert (event.action, event.outcome, event.purpose, event.case_reference) == (
        "child.read", "released", "EDUCATION", "CASE-3")
    assert event.subject == "user-7"
    assert event.client_id == gateway.client_id
    assert set(event.released) == {"Child.name", "Child.education"}
    assert dict(event.withheld) == {"Child.address": "FORBIDDEN"}
    assert event.sources == ("gp", "school", "council", "youth_justice")


async def test_refusals_and_searches_are_audited(store_gateway):
    gateway = store_gateway
    await gateway.child("ordinary", scopes="child.sensitive.read")          # root FORBIDDEN
    await gateway.gql(FIND_QUERY, {"s": {"nhsNumber": gateway.fixtures["ordinary"]}})
    await gateway.child("adult_no_consent")                                  # NOT_FOUND
    outcomes = sorted((e.action, e.outcome) for e in await events_for(gateway, "ordinary"))
    assert outcomes == [("child.read", "refused"), ("children.search", "released")]
    [adult] = await events_for(gateway, "adult_no_consent")
    assert (adult.action, adult.outcome, adult.released) == ("child.read", "not_found", ())


async def test_the_log_names_no_child_in_clear(gateway):
    for fixture in ("ordinary", "shielded", "sensitive_consented"):
        await gateway.child(fixture)
    db = Path(gateway.settings.audit.sqlite_path).read_bytes()
    wal = Path(gateway.settings.audit.sqlite_path + "-wal")
    raw = db + (wal.read_bytes() if wal.exists() else b"")
    for fixture in ("ordinary", "shielded", "sensitive_consented"):
        for value in personal_strings(record(gateway, fixture)):
            if len(value) >= 5:
                assert value.encode() not in raw, value


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
async def test_audit_store_down_releases_nothing(sims, jwks, signing_key, tmp_path, store):
    down = ({"sqlite_path": str(tmp_path / "no-such-folder" / "audit.db")} if store == "sqlite"
            else {"store": "postgresql",
                  "postgresql_dsn": "postgresql://postgres@127.0.0.1:1/nothing"})
    async with running_gateway(sims, jwks, signing_key,
                               audit={**down, "timeout_seconds": 0.5}) as gateway:
        response = await gateway.post({"query": "query($id: ID!) { child(id: $id, purpose: "
                                                "SAFEGUARDING) { name { family } } }",
                                       "variables": {"id": gateway.id_for(
                                           gateway.fixtures["ordinary"])}})
        assert response.status_code == 503
        body = response.json()
        assert body == {"errors": [{"message": body["errors"][0]["message"],
                                    "extensions": {"code": "AUDIT_UNAVAILABLE"}}]}
        family = record(gateway, "ordinary").family
        assert family not in response.text
        ready = await gateway.client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["audit"]["status"] == "unavailable"


async def test_access_report_for_the_data_protection_officer(store_gateway):
    gateway = store_gateway
    await gateway.child("ordinary", purpose="EDUCATION",
                        scopes="child.identity.read child.education.read",
                        fields="name { family } education { school { name } }")
    await gateway.child("shielded")                       # another child: not in the report
    body = await gateway.gql(REPORT, {"n": gateway.fixtures["ordinary"]}, scopes="audit.read")
    [entry] = body["data"]["accessReport"]
    assert (entry["purpose"], entry["fields"]) == ("EDUCATION", ["identity", "education"])
    assert entry["organisation"] == "council-42"
    outcomes = [(e.action, e.outcome) for e in await events_for(gateway, "ordinary")]
    assert ("access_report.read", "released") in outcomes   # its own use is audited


async def test_access_report_for_the_child_itself(gateway):
    nhs = gateway.fixtures["ordinary"]
    await gateway.child("ordinary", purpose="HEALTH_CARE")  # SAFEGUARDING would be withheld
    own = gateway.token("subject.self", subject_nhs_number=nhs)
    body = await gateway.gql(REPORT, {"n": nhs}, token=own)
    assert len(body["data"]["accessReport"]) == 1
    other = await gateway.gql(REPORT, {"n": gateway.fixtures["shielded"]}, token=own)
    assert other["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    none = await gateway.gql(REPORT, {"n": nhs}, scopes=ALL_SCOPES)
    assert none["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_budget_of_distinct_children_per_subject(sims, jwks, signing_key):
    limits = {"default": {"subject_per_hour": 3, "subject_per_day": 50,
                          "organisation_per_day": 100}}
    async with running_gateway(sims, jwks, signing_key, budgets=limits) as gateway:
        children = [c.nhs_number for c in sims.population.children[7:12]]
        for nhs in children[:3]:
            body = await gateway.gql("query($id: ID!) { child(id: $id, purpose: SAFEGUARDING)"
                                     " { id } }", {"id": gateway.id_for(nhs)})
            assert "errors" not in body or body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        again = await gateway.gql("query($id: ID!) { child(id: $id, purpose: SAFEGUARDING)"
                                  " { id } }", {"id": gateway.id_for(children[0])})
        assert "ACCESS_BUDGET_EXCEEDED" not in json.dumps(again)      # repeats are free
        response = await gateway.post({"query": "query($id: ID!) { child(id: $id, purpose: "
                                                "SAFEGUARDING) { id } }",
                                       "variables": {"id": gateway.id_for(children[3])}})
        assert response.status_code == 429
        assert response.json()["errors"][0]["extensions"]["code"] == "ACCESS_BUDGET_EXCEEDED"
        [event] = await gateway.runtime.accountability.audit.for_child(
            pseudonym(gateway, children[3]))
        assert event.outcome == "budget_exceeded"
        alerts = [json.loads(line) for line in
                  Path(gateway.settings.alerts.path).read_text().splitlines()]
        assert {"budget_warning", "budget_exceeded"} <= {a["kind"] for a in alerts}


async def test_rate_limit(sims, jwks, signing_key):
    budgets = {"subject_requests_per_minute": 60, "burst": 2}
    async with running_gateway(sims, jwks, signing_key, budgets=budgets) as gateway:
        statuses = [(await gateway.post({"query": "{ __typename }"})).status_code
                    for _ in range(5)]
        assert statuses[:2] == [200, 200]
        limited = await gateway.post({"query": "{ __typename }"})
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


def _alert_kinds(gateway) -> list[str]:
    path = Path(gateway.settings.alerts.path)
    if not path.exists():
        return []
    return [json.loads(line)["kind"] for line in path.read_text().splitlines()]


async def test_revealing_only_a_shielded_childs_carers_alerts(gateway):
    """The carers in full reveal location: asking for them alone still alerts."""
    fields = "carers { name { family } relationship phone }"
    await gateway.child("shielded", fields=fields, case=None)   # withheld: no alert
    assert "shielded_location_revealed" not in _alert_kinds(gateway)
    [event] = await events_for(gateway, "shielded")
    assert dict(event.withheld) == {"Child.carers": "SHIELDED"}
    body = await gateway.child("shielded", fields=fields, case="CASE-5")
    assert "errors" not in body, body
    assert body["data"]["child"]["carers"]
    assert "shielded_location_revealed" in _alert_kinds(gateway)


@pytest.mark.parametrize(("fixture", "kind"), [
    ("shielded", "shielded_location_revealed"),
    ("sensitive_consented", "sensitive_service_released"),
])
async def test_alerts_for_the_privacy_officer(gateway, fixture, kind):
    await gateway.child(fixture)
    lines = Path(gateway.settings.alerts.path).read_text().splitlines()
    alerts = [json.loads(line) for line in lines]
    assert kind in {a["kind"] for a in alerts}
    text = "\n".join(lines)
    assert gateway.fixtures[fixture] not in text
    assert "user-7" not in text


async def test_budgets_that_cannot_be_counted_may_refuse_every_lookup(sims, jwks, signing_key):
    """[budgets] when_redis_down = "refuse": Redis away means 503, nothing looked up, audited."""
    async with running_gateway(sims, jwks, signing_key,
                               cache={"redis_url": "redis://127.0.0.1:1/0",
                                      "redis_timeout_seconds": 0.2},
                               budgets={"when_redis_down": "refuse"}) as gateway:
        response = await gateway.post({"query": CHILD_BY_ID, "variables": {
            "id": gateway.id_for(gateway.fixtures["ordinary"])}})
        assert response.status_code == 503
        body = response.json()
        assert body["errors"][0]["extensions"]["code"] == "BUDGETS_UNAVAILABLE"
        assert body["data"] == {"child": None}
        assert sum(sum(getattr(sims, n).hits.values()) for n in sims.urls()) == 0
        [event] = await events_for(gateway, "ordinary")
        assert event.outcome == "refused"


CHILD_BY_ID = ('query($id: ID!) { child(id: $id, purpose: SAFEGUARDING, caseReference: "CASE-1")'
               " { name { family } } }")
