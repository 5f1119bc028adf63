"""JSON log lines: one object per line, the request and trace ids, never an exception's message."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from gateway.logs import (
    JsonFormatter,
    configure_logging,
    exception_summary,
    flush_logging,
    request_id_var,
)

SECRET = "9990001234 Jane Doe AB1 2CD"


def _record(message: str = "hello %s", args: tuple[object, ...] = ("world",),
            exc: BaseException | None = None):
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("gateway.test", logging.WARNING, __file__, 1, message, args,
                             exc_info)


def _lookup() -> None:
    raise KeyError(SECRET)


def _raised() -> BaseException:
    try:
        _lookup()
    except KeyError as exc:
        return exc
    raise AssertionError("unreachable")


def test_one_json_object_per_line_with_the_basics():
    line = JsonFormatter().format(_record())
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "hello world"
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "gateway.test"
    assert entry["time"].endswith("Z")
    assert "request_id" not in entry
    assert "trace_id" not in entry


def test_request_id_and_trace_id_when_known():
    context = SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, is_remote=True,
                          trace_flags=TraceFlags(1))
    token = request_id_var.set("req-1")
    try:
        with trace.use_span(NonRecordingSpan(context)):
            entry = json.loads(JsonFormatter().format(_record()))
    finally:
        request_id_var.reset(token)
    assert entry["request_id"] == "req-1"
    assert entry["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_an_exception_is_summarised_without_its_message():
    exc = _raised()
    line = JsonFormatter().format(_record("failed", (), exc=exc))
    entry = json.loads(line)
    assert entry["exception"].startswith("KeyError at test_logs.py:")
    assert "9990001234" not in line
    assert "Jane" not in line
    assert "9990001234" not in exception_summary(exc)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_configure_logging_switches_format_and_keeps_messages_out_of_tracebacks(fmt, monkeypatch):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    try:
        configure_logging("INFO", fmt)
        token = request_id_var.set("req-2")
        try:
            logging.getLogger("gateway.test").error("boom", exc_info=_raised())
        finally:
            request_id_var.reset(token)
    finally:
        flush_logging()  # the line is written by the log writer's thread
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    output = stream.getvalue()
    assert output.count("\n") == 1
    assert "9990001234" not in output
    assert "KeyError at test_logs.py:" in output
    assert "req-2" in output
    if fmt == "json":
        assert json.loads(output)["message"] == "boom"
    else:
        assert " ERROR gateway.test boom" in output


def test_queued_records_skip_what_no_line_prints_until_flushed(monkeypatch):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    before = (logging.logThreads, logging.logProcesses, logging.logMultiprocessing,
              logging._srcfile)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    try:
        configure_logging("INFO", "json")
        configure_logging("INFO", "text")  # switching format keeps what was there first
        assert (logging.logThreads, logging.logProcesses, logging.logMultiprocessing,
                logging._srcfile) == (False, False, False, None)
    finally:
        flush_logging()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert (logging.logThreads, logging.logProcesses, logging.logMultiprocessing,
            logging._srcfile) == before


def test_a_line_is_what_json_dumps_writes():
    line = JsonFormatter().format(_record("café %s", ("✓",)))
    entry = json.loads(line)
    assert entry["message"] == "café ✓"
    assert line == json.dumps(entry, ensure_ascii=False, default=str)
