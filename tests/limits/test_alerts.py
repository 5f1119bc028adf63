"""Alert sinks: a JSON-lines file and a webhook, carrying pseudonyms only."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import stat

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.alerts import Alert, FileAlertSink, WebhookAlertSink, open_alert_sink
from gateway.core.errors import AccessBudgetExceededError
from gateway.crypto.pseudonyms import Pseudonymiser
from gateway.limits.budgets import Budgets
from gateway.settings import AlertSettings, BudgetLimits, BudgetSettings, ConfigError
from tests.limits.support import SECRET, free_port

SUBJECT = "alice.smith@school.example"
PSEUDONYM = Pseudonymiser(SECRET)
AT = dt.datetime(2030, 3, 5, 10, 15, 30, 250_000, tzinfo=dt.UTC)


def alert(kind="sensitive_service_released", subject=None, child="4f1c2a9d7e3b6c80",
          **detail) -> Alert:
    return Alert(kind=kind, at=AT, request_id="req-9",
                 subject=subject or PSEUDONYM(SUBJECT), organisation="URN-100234",
                 child=child, purpose="HEALTH_CARE", detail=detail or {"service": "svc-3"})


def read_lines(path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_budget_alerts_reach_the_file_with_pseudonyms_only(tmp_path, redis_client,
                                                                 prefix, clock):
    path = tmp_path / "alerts.jsonl"
    sink = open_alert_sink(AlertSettings(path=str(path)), PSEUDONYM)
    budgets = Budgets(BudgetSettings(default=BudgetLimits(subject_per_hour=2)), redis_client,
                      prefix, SECRET, sink, clock, pseudonym=PSEUDONYM)
    for child in ("child-p1", "child-p2", "child-p3"):
        with contextlib.suppress(AccessBudgetExceededError):
            await budgets.charge(subject=SUBJECT, organisation="URN-100234",
                                 roles=frozenset(), child=child, request_id="req-1")
    await sink.close()
    text = path.read_text()
    assert SUBJECT not in text
    assert "alice" not in text
    lines = read_lines(path)
    assert [line["kind"] for line in lines] == ["budget_warning", "budget_exceeded"]
    assert {line["subject"] for line in lines} == {PSEUDONYM(SUBJECT)}
    assert lines[1] == {
        "kind": "budget_exceeded", "at": "2030-03-05T10:15:00.000Z", "request_id": "req-1",
        "subject": PSEUDONYM(SUBJECT), "organisation": "URN-100234", "child": "child-p3",
        "purpose": None,
        "detail": {"budget": "subject_hour", "used": 2, "limit": 2, "full": "subject_hour"}}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_concurrent_emits_append_whole_lines(tmp_path):
    path = tmp_path / "alerts.jsonl"
    path.write_text('{"kind":"earlier"}\n')
    sink = FileAlertSink(path, PSEUDONYM)
    await asyncio.gather(*(sink.emit(alert(n=i)) for i in range(200)))
    await sink.close()
    lines = read_lines(path)
    assert lines[0] == {"kind": "earlier"}
    assert sorted(line["detail"]["n"] for line in lines[1:]) == list(range(200))


async def test_a_sink_pseudonymises_what_a_caller_left_in_clear(tmp_path, caplog):
    path = tmp_path / "alerts.jsonl"
    sink = FileAlertSink(path, PSEUDONYM)
    with caplog.at_level(logging.WARNING, logger="gateway.alerts"):
        await sink.emit(alert(subject=SUBJECT, child="943 476 5919"))
    await sink.close()
    assert SUBJECT not in path.read_text()
    assert "943" not in path.read_text()
    [line] = read_lines(path)
    assert (line["subject"], line["child"]) == (PSEUDONYM(SUBJECT), PSEUDONYM("9434765919"))
    assert "subject" in caplog.text
    assert SUBJECT not in caplog.text


async def test_an_unwritable_file_is_logged_not_raised(tmp_path, caplog):
    sink = FileAlertSink(tmp_path / "missing-dir" / "alerts.jsonl", PSEUDONYM)
    await sink.emit(alert())
    await sink.close()
    assert "alert lost" in caplog.text


async def collecting_server(received: list[dict[str, object]], status: int = 204) -> TestServer:
    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/alerts", hook)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    return server


async def test_webhook_receives_each_alert_as_json(caplog):
    received: list[dict[str, object]] = []
    server = await collecting_server(received)
    try:
        settings = AlertSettings(sink="webhook", webhook_url=str(server.make_url("/alerts")))
        sink = open_alert_sink(settings, PSEUDONYM)
        assert isinstance(sink, WebhookAlertSink)
        await sink.emit(alert(kind="shielded_location_revealed", field="address"))
        await sink.emit(alert(subject=SUBJECT))
        await sink.close()
    finally:
        await server.close()
    assert [r["kind"] for r in received] == ["shielded_location_revealed",
                                             "sensitive_service_released"]
    assert received[0] == {
        "kind": "shielded_location_revealed", "at": "2030-03-05T10:15:30.250Z",
        "request_id": "req-9", "subject": PSEUDONYM(SUBJECT), "organisation": "URN-100234",
        "child": "4f1c2a9d7e3b6c80", "purpose": "HEALTH_CARE", "detail": {"field": "address"}}
    assert SUBJECT not in json.dumps(received)
    assert "lost" not in caplog.text


async def test_a_webhook_that_refuses_is_logged(caplog):
    received: list[dict[str, object]] = []
    server = await collecting_server(received, status=500)
    try:
        sink = WebhookAlertSink(str(server.make_url("/alerts")), PSEUDONYM)
        await sink.emit(alert())
        await sink.close()
    finally:
        await server.close()
    assert len(received) == 1
    assert "HTTP 500" in caplog.text


async def test_a_dead_webhook_neither_raises_nor_delays_the_caller(caplog):
    sink = WebhookAlertSink(f"http://127.0.0.1:{free_port()}/alerts", PSEUDONYM,
                            timeout_seconds=0.5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await sink.emit(alert())
    await sink.emit(alert())
    assert loop.time() - started < 0.05      # emit only queues
    await sink.close()
    assert caplog.text.count("webhook unreachable") == 2


async def test_closing_an_unused_webhook_sink_is_harmless():
    await WebhookAlertSink("http://127.0.0.1:9/alerts", PSEUDONYM).close()


def test_file_is_the_default_sink(tmp_path):
    sink = open_alert_sink(AlertSettings(path=str(tmp_path / "a.jsonl")), PSEUDONYM)
    assert isinstance(sink, FileAlertSink)


def test_a_webhook_sink_needs_a_url():
    with pytest.raises(ConfigError, match="webhook_url"):
        open_alert_sink(AlertSettings(sink="webhook"), PSEUDONYM)


@pytest.mark.parametrize(("changes", "message"), [
    ({"kind": "something_else"}, "unknown alert kind"),
    ({"at": dt.datetime(2030, 1, 1)}, "timezone-aware"),  # noqa: DTZ001 - naive on purpose
])
def test_alerts_check_their_kind_and_time(changes, message):
    fields = {"kind": "budget_warning", "at": AT, "request_id": "r", "subject": "s", **changes}
    with pytest.raises(ValueError, match=message):
        Alert(**fields)
