"""Refused authentications and refused requests reach the audit log, pseudonymous and bounded."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from gateway.accountability.audit import open_store
from gateway.accountability.audit.events import decode
from tests.auth.helpers import OMIT, make_token
from tests.integration.harness import running_gateway


async def logged(gateway):
    """Every event in the gateway's audit log, after the refusals queue is written."""
    await gateway.runtime.refusals.flush()
    store = open_store(gateway.settings.audit, read_only=True)
    try:
        return [decode(row.body) for row in await store.read_events(0, 100_000)]
    finally:
        await store.close()


def raw_log(gateway) -> bytes:
    path = Path(gateway.settings.audit.sqlite_path)
    wal = Path(f"{path}-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def bad_tokens(key) -> dict[str, str]:
    now = time.time()
    return {
        "expired": make_token(key, now - 3_600),
        "wrong issuer": make_token(key, now, claims={"iss": "https://evil.example/"}),
        "alg none": "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJ1c2VyLTcifQ.",
        "no MFA": make_token(key, now, claims={"amr": ["pwd"]}),
        "no jti": make_token(key, now, claims={"jti": OMIT}),
    }


async def test_each_refused_token_is_an_audit_event_without_the_token(gateway):
    tokens = bad_tokens(gateway.key)
    for token in tokens.values():
        response = await gateway.post({"query": "{ __typename }"}, token=token)
        assert response.status_code == 401
    events = await logged(gateway)
    assert [(e.action, e.outcome, e.subject) for e in events] == [
        ("authentication", "refused", "-")] * len(tokens)
    reasons = [e.reason for e in events]
    assert "missing MFA" in reasons
    assert all(reason and "." not in reason for reason in reasons)
    assert len({e.source for e in events}) == 1
    raw = raw_log(gateway)
    for token in tokens.values():
        for part in token.split("."):
            if len(part) > 8:
                assert part.encode() not in raw
    assert b"user-7" not in raw  # an unverified token's subject is not believed


async def test_an_unauthenticated_flood_writes_a_bounded_number_of_events(sims, jwks,
                                                                          signing_key):
    async with running_gateway(sims, jwks, signing_key,
                               audit={"refusals_per_source_minute": 5}) as gateway:
        for _ in range(300):
            response = await gateway.post({"query": "{ __typename }"}, token="not-a-token")
            assert response.status_code == 401
        await gateway.runtime.refusals.close()  # the minute's summary, as at shutdown
        events = await logged(gateway)
    singles = [e for e in events if e.count is None]
    summaries = [e for e in events if e.count is not None]
    per_minute = Counter(int(e.at.timestamp() // 60) for e in singles)
    assert len(per_minute) <= 2  # the flood may straddle a minute boundary
    assert all(n <= 5 for n in per_minute.values()), per_minute
    assert len(summaries) <= len(per_minute)
    assert len(singles) + sum(e.count or 0 for e in summaries) == 300


async def test_a_rate_limited_request_is_recorded_with_its_subject(sims, jwks, signing_key):
    budgets = {"subject_requests_per_minute": 60, "burst": 1}
    async with running_gateway(sims, jwks, signing_key, budgets=budgets) as gateway:
        statuses = [(await gateway.post({"query": "{ __typename }"})).status_code
                    for _ in range(3)]
        assert 429 in statuses
        events = await logged(gateway)
    limited = [e for e in events if e.outcome == "rate_limited"]
    assert limited
    assert {(e.action, e.subject, e.client_id) for e in limited} == {
        ("request", "user-7", gateway.client_id)}


@pytest.mark.parametrize(("body", "reason"), [
    ({"query": "{ child(id: 1"}, "GRAPHQL_VALIDATION_FAILED"),
    ({"query": "fragment F on Child { id }"}, "BAD_USER_INPUT"),
    ({"query": "{ __typename }", "variables": []}, "BAD_USER_INPUT"),
])
async def test_a_refused_document_is_recorded_with_its_subject(gateway, body, reason):
    response = await gateway.post(body)
    assert response.status_code in {200, 400}
    [event] = await logged(gateway)
    assert (event.action, event.outcome, event.subject) == ("request", "bad_request", "user-7")
    assert event.reason in {reason, "GRAPHQL_PARSE_FAILED"}
