"""Metrics, traces and logs carry no child: driven through the privacy-critical paths.

README "Operations: metrics, traces and logs"; DESIGN §6 Operators ("never a
child identifier, name or free text in a label"). Spans are collected with the
SDK's in-memory exporter, `/metrics` is scraped from the app, and every log
line is formatted by the gateway's JSON formatter as it is emitted.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from gateway.logs import JsonFormatter
from tests.integration.harness import CHILD_QUERY, FIND_QUERY, running_gateway
from tests.integration.support import record

FAMILIES = (
    "contactpoint_requests", "contactpoint_request_duration_seconds",
    "contactpoint_upstream_requests", "contactpoint_upstream_duration_seconds",
    "contactpoint_upstream_errors", "contactpoint_upstream_circuit_state",
    "contactpoint_cache_lookups", "contactpoint_budget_refusals",
    "contactpoint_rate_limit_refusals", "contactpoint_audit_commit_duration_seconds",
    "contactpoint_audit_queue_depth",
)
SPANS = {"graphql.request", "authenticate", "graphql.execute", "cache.get", "upstream.fetch",
         "upstream.search", "audit.commit"}
CASE = "CASE-TELEMETRY-4417"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


class _Gate(SimpleSpanProcessor):
    """Exports only while a test collects (the provider outlives this module)."""

    collecting = False

    def on_end(self, span: ReadableSpan) -> None:
        if self.collecting:
            super().on_end(span)


_EXPORTER = InMemorySpanExporter()
_GATE = _Gate(_EXPORTER)


@pytest.fixture
def spans():
    """Spans of gateways started after this fixture (the app decides to trace at start)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    if not getattr(provider, "_telemetry_test_gate", False):
        provider.add_span_processor(_GATE)
        provider._telemetry_test_gate = True  # type: ignore[attr-defined]
    _EXPORTER.clear()
    _GATE.collecting = True
    yield _EXPORTER
    _GATE.collecting = False
    _EXPORTER.clear()


@pytest.fixture
def log_lines():
    """Every log record, formatted as JSON at the moment it is emitted."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield lambda: stream.getvalue().splitlines()
    root.removeHandler(handler)
    root.setLevel(level)


def _search(child, **extra):
    return {"familyName": child.family, "dateOfBirth": child.date_of_birth.isoformat(), **extra}


async def _privacy_load(gateway) -> dict[str, set[str]]:
    """The privacy-critical requests; returns what must appear nowhere, by kind."""
    forbidden: dict[str, set[str]] = {"nhs": set(), "name": set(), "postcode": set(),
                                      "id": set(), "case": {CASE}, "token": set(), "phone": set()}

    def note(fixture):
        child = record(gateway, fixture)
        forbidden["nhs"].add(child.nhs_number)
        forbidden["name"].update((*child.given, child.family))
        forbidden["name"].update(name for c in child.carers for name in (c.given, c.family))
        forbidden["phone"].update(c.phone for c in child.carers)
        forbidden["postcode"].add(child.home.postcode)
        forbidden["id"].add(gateway.id_for(child.nhs_number))
        return child

    token = gateway.token()
    forbidden["token"].add(token)
    for fixture in ("shielded", "sensitive_consented", "ordinary"):
        note(fixture)
        body = await gateway.gql(CHILD_QUERY, {"id": gateway.id_for(gateway.fixtures[fixture]),
                                               "purpose": "SAFEGUARDING", "case": CASE},
                                 token=token)
        assert body["data"]["child"] is not None, body
    await gateway.child("ordinary", case=CASE)                       # from the cache now
    ordinary = note("ordinary")
    # Search by name, date of birth and postcode; and by NHS number.
    found = await gateway.gql(FIND_QUERY, {"s": _search(ordinary,
                                                        postcode=ordinary.home.postcode)})
    assert len(found["data"]["findChildren"]) == 1, found
    forbidden["id"].add(found["data"]["findChildren"][0]["id"])
    by_nhs = await gateway.gql(FIND_QUERY, {"s": {"nhsNumber": ordinary.nhs_number}})
    assert len(by_nhs["data"]["findChildren"]) == 1
    # A client that puts the child in its free text: the operation name, a literal.
    child_id = gateway.id_for(ordinary.nhs_number)
    named = f"Lookup{ordinary.nhs_number}{ordinary.family}"
    response = await gateway.post({"query": f'query {named} {{ child(id: "{child_id}", '
                                            f'purpose: SAFEGUARDING, caseReference: "{CASE}")'
                                            " { nhsNumber } }", "operationName": named},
                                  headers={"traceparent": TRACEPARENT})
    assert response.json()["data"]["child"]["nhsNumber"] == ordinary.nhs_number
    forbidden["name"].add(named)
    # A refused token, which must not be echoed anywhere either.
    bad = token[:-6] + "AAAAAA"
    forbidden["token"].add(bad)
    refused = await gateway.post({"query": CHILD_QUERY, "variables": {"id": child_id,
                                                                      "purpose": "SAFEGUARDING"}},
                                 token=bad)
    assert refused.status_code == 401
    # A system down: its failure is counted, the child still served from the others.
    gateway.sims.council.knobs.down = True
    sensitive = note("sensitive_unconsented")
    body = await gateway.gql(CHILD_QUERY, {"id": gateway.id_for(sensitive.nhs_number),
                                           "purpose": "SAFEGUARDING", "case": CASE})
    assert body["data"]["child"]["sources"], body
    gateway.sims.council.knobs.down = False
    return forbidden


async def _refusal_load(sims, jwks, signing_key) -> set[str]:
    """A budget exceeded, then the request rate exceeded; returns the NHS numbers used."""
    budgets = {"default": {"subject_per_hour": 1, "subject_per_day": 50,
                           "organisation_per_hour": 100, "organisation_per_day": 100},
               "subject_requests_per_minute": 60, "burst": 3}
    async with running_gateway(sims, jwks, signing_key, budgets=budgets) as gateway:
        children = [c.nhs_number for c in sims.population.children[20:22]]
        query = "query($id: ID!) { child(id: $id, purpose: SAFEGUARDING) { id } }"
        codes = []
        for nhs in (*children, *children):
            response = await gateway.post({"query": query,
                                           "variables": {"id": gateway.id_for(nhs)}})
            codes.append(response.json()["errors"][0]["extensions"]["code"]
                         if "errors" in response.json() else "OK")
        assert "ACCESS_BUDGET_EXCEEDED" in codes, codes
        assert "RATE_LIMITED" in codes, codes
        return set(children)


def _leaks(text: str, forbidden: dict[str, set[str]]) -> list[str]:
    found = [value for kind, values in forbidden.items() if kind != "name"
             for value in values if value and value in text]
    found += [name for name in forbidden["name"]
              if len(name) > 2 and re.search(rf"\b{re.escape(name)}\b", text)]
    return found


def _span_text(span: ReadableSpan) -> str:
    parts = [span.name, *(f"{k}={v}" for k, v in (span.attributes or {}).items())]
    for event in span.events:
        parts += [event.name, *(f"{k}={v}" for k, v in (event.attributes or {}).items())]
    if span.status.description:
        parts.append(span.status.description)
    return " ".join(parts)


async def test_no_child_in_metrics_spans_or_logs(spans, log_lines, gateway, sims, jwks,
                                                 signing_key):
    forbidden = await _privacy_load(gateway)
    forbidden["nhs"] |= await _refusal_load(sims, jwks, signing_key)
    finished = spans.get_finished_spans()
    assert {s.name for s in finished} >= SPANS, sorted({s.name for s in finished})
    for span in finished:
        assert not _leaks(_span_text(span), forbidden), (span.name, _span_text(span))
        keys = set(span.attributes or {})
        assert not {k for k in keys if k.startswith("graphql.param") or k == "query"}, keys
    operations = {s.attributes["graphql.operation"] for s in finished
                  if s.name == "graphql.request" and s.attributes}
    assert {"query child", "query findChildren"} <= operations, operations
    # The client's traceparent is continued, and the logs carry its trace id.
    assert TRACE_ID in {format(s.context.trace_id, "032x") for s in finished}
    lines = log_lines()
    entries = [json.loads(line) for line in lines]
    assert any(e.get("trace_id") == TRACE_ID and e.get("request_id") for e in entries)
    assert {"time", "level", "logger", "message"} <= set(entries[0])
    for line in lines:
        assert not _leaks(line, forbidden), line

    response = await gateway.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert not _leaks(text, forbidden)
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples
               if s.name.startswith("contactpoint_")]
    labels = {value for sample in samples for value in sample.labels.values()}
    assert not _leaks(" ".join(labels), forbidden), labels
    names = {family.name for family in text_string_to_metric_families(text)}
    missing = [f for f in FAMILIES if f not in names]
    assert not missing, missing
    codes = {s.labels["code"] for s in samples if s.name == "contactpoint_requests_total"}
    assert {"OK", "UNAUTHENTICATED", "ACCESS_BUDGET_EXCEEDED", "RATE_LIMITED"} <= codes, codes
    assert codes <= _closed_codes(), codes
    circuits = {s.labels["system"]: s.value for s in samples
                if s.name == "contactpoint_upstream_circuit_state"}
    assert circuits == dict.fromkeys(("gp", "school", "council", "youth_justice"), 0.0)
    errors = {s.labels["system"] for s in samples
              if s.name == "contactpoint_upstream_errors_total" and s.value > 0}
    assert "council" in errors
    hits = {s.labels["result"] for s in samples
            if s.name == "contactpoint_cache_lookups_total" and s.value > 0}
    assert hits == {"hit", "miss"}


def _closed_codes() -> set[str]:
    from gateway.telemetry.requests import _known_codes

    return {*_known_codes(), "OTHER"}


async def test_metrics_need_the_token_when_one_is_set(sims, jwks, signing_key):
    token = "metrics-token-" + "m" * 32
    async with running_gateway(sims, jwks, signing_key,
                               telemetry={"metrics_token": token}) as gateway:
        assert (await gateway.client.get("/metrics")).status_code == 401
        wrong = await gateway.client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert "contactpoint_" not in wrong.text
        right = await gateway.client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert right.status_code == 200
        assert "contactpoint_requests_total" in right.text or "# HELP" in right.text


async def test_metrics_can_be_switched_off(sims, jwks, signing_key):
    async with running_gateway(sims, jwks, signing_key, telemetry={"metrics": False}) as gateway:
        assert (await gateway.client.get("/metrics")).status_code == 404


async def test_the_leak_check_catches_strawberrys_own_tracing_extension(spans, gateway):
    """Why the gateway has its own execution span: strawberry's records arguments and the
    document, so the child's id and case reference would reach the traces."""
    from strawberry.extensions.tracing import OpenTelemetryExtension

    schema = gateway.runtime.schema
    own = schema.extensions
    schema.extensions = (*own, OpenTelemetryExtension)
    try:
        await gateway.child("ordinary", case=CASE)
    finally:
        schema.extensions = own
    forbidden = {"id": {gateway.id_for(gateway.fixtures["ordinary"])}, "case": {CASE},
                 "name": set()}
    leaked = [s.name for s in spans.get_finished_spans() if _leaks(_span_text(s), forbidden)]
    assert leaked, "the check would not have noticed"


async def test_without_tracing_the_logs_still_carry_the_callers_trace_id(gateway, log_lines,
                                                                         monkeypatch):
    from gateway.telemetry import tracing

    monkeypatch.setattr(tracing._State, "recording", False)
    response = await gateway.post({"query": "{ __typename }"},
                                  headers={"traceparent": TRACEPARENT})
    assert response.status_code == 200
    access = [json.loads(line) for line in log_lines() if '"gateway.access"' in line]
    assert access, log_lines()
    assert access[-1]["trace_id"] == TRACE_ID
    assert access[-1]["request_id"] == response.headers["x-request-id"]


_WORKER = """
import sys
from gateway.telemetry.endpoint import _exposition, multiprocess_mode
from gateway.telemetry.metrics import AUDIT_QUEUE_DEPTH, REQUESTS
assert multiprocess_mode()
REQUESTS.labels("query child", "OK").inc(int(sys.argv[1]))
AUDIT_QUEUE_DEPTH.set(2)
if sys.argv[2] == "scrape":
    sys.stdout.write(_exposition().decode())
"""


def test_metrics_add_up_worker_processes(tmp_path):
    """`PROMETHEUS_MULTIPROC_DIR` (set by `serve --workers`): every scrape sums all workers;
    a departed worker's live gauges go once the supervisor marks it dead."""
    from prometheus_client import multiprocess

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    first = subprocess.Popen([sys.executable, "-c", _WORKER, "3", "-"], env=env)
    assert first.wait(timeout=30) == 0
    multiprocess.mark_process_dead(first.pid, str(tmp_path))
    second = subprocess.run([sys.executable, "-c", _WORKER, "4", "scrape"], env=env,
                            capture_output=True, text=True, timeout=30, check=True)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(second.stdout)
               for s in family.samples}
    key = (("code", "OK"), ("operation", "query child"))
    assert samples[("contactpoint_requests_total", key)] == 7
    assert samples[("contactpoint_audit_queue_depth", ())] == 2
