"""Refused authentications and requests: recorded, pseudonymous, and bounded under a flood."""

from __future__ import annotations

import logging

import pytest

from gateway.accountability.audit import open_audit_log, open_store, verify_log
from gateway.accountability.audit.checkpoints import CheckpointKey
from gateway.accountability.audit.events import decode
from gateway.accountability.refusals import OTHER_SOURCE, Refusal, Refusals
from gateway.crypto.pseudonyms import Pseudonymiser

MINUTE = 1_800_000 * 60.0  # a whole minute, far from any real clock


class Clock:
    def __init__(self) -> None:
        self.now = MINUTE + 1.0

    def __call__(self) -> float:
        return self.now


def bad_token(i: int = 0) -> Refusal:
    return Refusal("authentication", "refused", "expired", f"req-{i}")


async def stored(settings):
    store = open_store(settings, read_only=True)
    try:
        return [decode(row.body) for row in await store.read_events(0, 100_000)]
    finally:
        await store.close()


@pytest.fixture
async def log_and_settings(backend):
    settings = backend.settings()
    log = await open_audit_log(settings)
    yield log, settings
    await log.close()


def refusals(log, clock, **limits):
    options = {"per_source": 5, "overall": 200, **limits}
    return Refusals(log, Pseudonymiser("refusal-test-secret-" + "r" * 20), clock=clock, **options)


async def test_a_flood_from_one_source_writes_its_threshold_then_one_summary(log_and_settings):
    log, settings = log_and_settings
    clock = Clock()
    recorder = refusals(log, clock)
    for i in range(1_000):
        recorder.note(bad_token(i), "203.0.113.7")
    await recorder.flush()
    singles = await stored(settings)
    assert len(singles) == 5
    assert {(e.action, e.outcome, e.reason, e.count) for e in singles} == {
        ("authentication", "refused", "expired", None)}
    clock.now += 60  # the minute ends: its summary is written at the next note or close
    await recorder.close()
    events = await stored(settings)
    [summary] = events[5:]
    assert (summary.action, summary.reason, summary.count) == ("authentication", "expired", 995)
    assert summary.source == singles[0].source


async def test_the_peer_address_and_the_token_never_reach_the_log(log_and_settings):
    log, settings = log_and_settings
    recorder = refusals(log, Clock())
    recorder.note(bad_token(), "203.0.113.7")
    await recorder.close()
    [event] = await stored(settings)
    assert event.source is not None
    assert "203.0.113" not in event.source
    assert (event.subject, event.client_id, event.organisation, event.child) == (
        "-", "-", None, None)


async def test_many_sources_are_capped_overall_and_each_summarised(log_and_settings):
    log, settings = log_and_settings
    clock = Clock()
    recorder = refusals(log, clock, per_source=2, overall=10)
    for peer in range(50):
        for i in range(3):
            recorder.note(bad_token(i), f"198.51.100.{peer}")
    await recorder.close()
    events = await stored(settings)
    singles = [e for e in events if e.count is None]
    summaries = [e for e in events if e.count is not None]
    assert len(singles) == 10
    assert sum(e.count for e in summaries) == 150 - 10
    assert len({e.source for e in summaries}) == 50  # every source accounted for


async def test_sources_beyond_the_cap_are_summed_as_other(log_and_settings):
    log, settings = log_and_settings
    recorder = refusals(log, Clock(), per_source=0, overall=0, max_sources=3)
    for peer in range(10):
        recorder.note(bad_token(), f"192.0.2.{peer}")
    await recorder.close()
    summaries = await stored(settings)
    counts = {e.source: e.count for e in summaries}
    assert len(counts) == 4
    assert counts[OTHER_SOURCE] == 7


async def test_refused_requests_name_the_authenticated_subject(log_and_settings):
    log, settings = log_and_settings
    recorder = refusals(log, Clock())
    recorder.note(Refusal("request", "rate_limited", "requests per minute", "req-1", "user-9",
                          "org-3", "client-z"), "203.0.113.8")
    await recorder.close()
    [event] = await stored(settings)
    assert (event.action, event.outcome, event.subject, event.organisation, event.client_id) == (
        "request", "rate_limited", "user-9", "org-3", "client-z")


async def test_refusal_events_keep_the_chain_verifiable(log_and_settings):
    log, settings = log_and_settings
    clock = Clock()
    recorder = refusals(log, clock, per_source=1)
    for i in range(7):
        recorder.note(bad_token(i), "203.0.113.9")
    await recorder.close()
    store = open_store(settings, read_only=True)
    try:
        verdict = await verify_log(store, CheckpointKey.from_settings(settings),
                                   settings.checkpoint_every)
    finally:
        await store.close()
    assert verdict.ok, verdict.line()


async def test_an_unavailable_store_loses_refusals_by_number_only(sqlite_backend, tmp_path, caplog):
    settings = sqlite_backend.settings(sqlite_path=str(tmp_path / "missing" / "audit.db"),
                                       timeout_seconds=0.3)
    log = await open_audit_log(settings)
    recorder = refusals(log, Clock())
    recorder.note(bad_token(), "203.0.113.10")
    with caplog.at_level(logging.WARNING):
        await recorder.close()  # does not raise: a refusal never waits on the audit store
    await log.close()
    assert "1 refusal events not recorded" in caplog.text
    assert "203.0.113" not in caplog.text
