"""Logging that carries no personal data: JSON lines with the request and trace ids.

An exception's message may quote data (a KeyError names the missing key, a
ValueError the bad value), so logs get the type and the code locations only:
`exception_summary` for our own code, and the JSON formatter does the same
for any record logged with a traceback (a library's, say).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import traceback
from contextvars import ContextVar
from typing import Literal

from opentelemetry import trace

__all__ = ["JsonFormatter", "configure_logging", "exception_summary", "request_id_var"]

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
"""The id of the request being handled (set by the GraphQL endpoint for its duration)."""

_TEXT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def exception_summary(exc: BaseException, depth: int = 6) -> str:
    """`TypeName at file:line (function) <- ...`, innermost first, no message."""
    frames = traceback.extract_tb(exc.__traceback__)[-depth:]
    where = " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} ({f.name})"
                        for f in reversed(frames))
    return f"{type(exc).__name__} at {where or 'unknown'}"


def _trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, trace_id.

    A record's traceback becomes `exception` as `exception_summary` (no message).
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (request_id := request_id_var.get()) is not None:
            entry["request_id"] = request_id
        if (trace_id := _trace_id()) is not None:
            entry["trace_id"] = trace_id
        if record.exc_info and record.exc_info[1] is not None:
            entry["exception"] = exception_summary(record.exc_info[1])
        return json.dumps(entry, ensure_ascii=False, default=str)


class _TextFormatter(logging.Formatter):
    """The plain format, with the request id appended when there is one; no traceback text."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text
        record.exc_info, record.exc_text = None, None
        try:
            line = super().format(record)
        finally:
            record.exc_info, record.exc_text = saved
        if record.exc_info and record.exc_info[1] is not None:
            line = f"{line} [{exception_summary(record.exc_info[1])}]"
        request_id = request_id_var.get()
        return line if request_id is None else f"{line} request_id={request_id}"


def configure_logging(level: str = "INFO", fmt: Literal["json", "text"] = "json") -> None:
    """One line per event on stderr, JSON or text; used by the CLI (tests keep pytest's handlers).

    Replaces the root logger's handlers, so calling it again switches format.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else _TextFormatter(_TEXT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
