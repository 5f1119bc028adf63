"""Logging that carries no personal data: JSON lines with the request and trace ids.

An exception's message may quote data (a KeyError names the missing key, a
ValueError the bad value), so logs get the type and the code locations only:
`exception_summary` for our own code, and the JSON formatter does the same
for any record logged with a traceback (a library's, say).

Lines are written off the request path: `configure_logging` puts a queue in
front of stderr and one thread formats and writes what is queued (several lines
a write when they come fast). The emitting side only notes the request and
trace ids on the record (`_Handoff`); `flush_logging` writes everything queued
and runs at exit. Meanwhile records skip what no line of ours prints (`_LEAN`).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import datetime as dt
import json
import logging
import logging.handlers
import sys
import threading
import traceback
from contextvars import ContextVar
from typing import Literal, TextIO

from opentelemetry import trace

__all__ = ["JsonFormatter", "configure_logging", "exception_summary", "flush_logging",
           "request_id_var"]

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
"""The id of the request being handled (set by the GraphQL endpoint for its duration)."""

_TEXT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_to_json = json.JSONEncoder(ensure_ascii=False, default=str).encode
"""`json.dumps(entry, ensure_ascii=False, default=str)`, without a new encoder per line."""


def exception_summary(exc: BaseException, depth: int = 6) -> str:
    """`TypeName at file:line (function) <- ...`, innermost first, no message."""
    frames = traceback.extract_tb(exc.__traceback__)[-depth:]
    where = " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} ({f.name})"
                        for f in reversed(frames))
    return f"{type(exc).__name__} at {where or 'unknown'}"


def _trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


_IDS = "contactpoint_ids"
"""A queued record's (request id, trace id), noted where it was emitted (`_Handoff`)."""


def _ids(record: logging.LogRecord) -> tuple[str | None, str | None]:
    """The request and trace ids of `record`: noted when queued, else the current ones."""
    ids: tuple[str | None, str | None] | None = getattr(record, _IDS, None)
    return (request_id_var.get(), _trace_id()) if ids is None else ids


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
        request_id, trace_id = _ids(record)
        if request_id is not None:
            entry["request_id"] = request_id
        if trace_id is not None:
            entry["trace_id"] = trace_id
        if record.exc_info and record.exc_info[1] is not None:
            entry["exception"] = exception_summary(record.exc_info[1])
        return _to_json(entry)


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
        request_id = _ids(record)[0]
        return line if request_id is None else f"{line} request_id={request_id}"


_PLAIN = frozenset({str, int, float, bool, type(None)})
_PAUSE = 0.05
"""Seconds between the writer's looks at the queue: a line waits at most about this long."""


class _Handoff(logging.handlers.QueueHandler):
    """Queues a record with its request and trace ids, unformatted.

    `QueueHandler.prepare` formats the message (the cost we move off the request
    path); this one formats it only when an argument could change before the
    writer gets to it (anything but a str, number, bool or None). The queue is a
    deque nobody waits on, so queueing never wakes a thread.
    """

    queue: collections.deque[logging.LogRecord]  # type: ignore[assignment]

    def __init__(self, records: collections.deque[logging.LogRecord]) -> None:
        super().__init__(records)  # type: ignore[arg-type]  # a deque: append, no put_nowait

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        setattr(record, _IDS, (request_id_var.get(), _trace_id()))
        args = record.args
        if args and not (isinstance(args, tuple) and _PLAIN.issuperset(map(type, args))):
            record.msg, record.args = record.getMessage(), None
        return record

    def enqueue(self, record: logging.LogRecord) -> None:
        self.queue.append(record)


class _Writer:
    """The thread that formats queued records with `handler` and writes them, all that
    is queued in one write; it polls (`_PAUSE`) rather than being woken for each line."""

    def __init__(self, handler: logging.StreamHandler[TextIO]) -> None:
        self.handler = handler
        self.queue: collections.deque[logging.LogRecord] = collections.deque()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            stopping = self._stopping.wait(_PAUSE)
            self._drain()
            if stopping:
                return

    def _drain(self) -> None:
        lines, pop = [], self.queue.popleft
        last: logging.LogRecord | None = None
        while self.queue:
            last = pop()
            try:
                lines.append(self.handler.format(last) + self.handler.terminator)
            except Exception:  # noqa: BLE001 - logging never raises; handleError reports it
                self.handler.handleError(last)
        if lines and last is not None:
            try:
                with self.handler.lock or contextlib.nullcontext():
                    self.handler.stream.write("".join(lines))
                    self.handler.stream.flush()
            except Exception:  # noqa: BLE001 - as above
                self.handler.handleError(last)

    def stop(self) -> None:
        """Write everything queued so far, then end the thread."""
        self._stopping.set()
        self._thread.join()
        self._drain()  # anything queued after the thread's last look


_writer: _Writer | None = None
_writer_lock = threading.Lock()

_LEAN: dict[str, object] = {"logThreads": False, "logProcesses": False,
                            "logMultiprocessing": False, "_srcfile": None}
"""The logging HOWTO's "Optimization" switches, on while our formatters are installed:
neither prints a thread, a process or a source location, and gathering them costs
each record microseconds (`os.getpid()` is a system call, `findCaller` walks frames)."""
_saved: dict[str, object] = {}


def _lean_records(lean: bool) -> None:
    """Switch `_LEAN` on, or restore the values it replaced (called under `_writer_lock`)."""
    if lean and not _saved:
        _saved.update((name, getattr(logging, name)) for name in _LEAN)
    for name, value in (_LEAN if lean else _saved).items():
        setattr(logging, name, value)
    if not lean:
        _saved.clear()


def flush_logging() -> None:
    """Write every queued line now and log straight to stderr from here on (runs at exit;
    `configure_logging` starts queueing again)."""
    global _writer  # one writer per process
    with _writer_lock:
        writer, _writer = _writer, None
        if writer is None:
            return
        root = logging.getLogger()
        for handler in root.handlers[:]:
            if isinstance(handler, _Handoff) and handler.queue is writer.queue:
                root.removeHandler(handler)
                root.addHandler(writer.handler)
        writer.stop()
        _lean_records(False)


atexit.register(flush_logging)


def configure_logging(level: str = "INFO", fmt: Literal["json", "text"] = "json") -> None:
    """One line per event on stderr, JSON or text; used by the CLI (tests keep pytest's handlers).

    Replaces the root logger's handlers, so calling it again switches format. Lines
    are queued and written by a thread (see the module docstring).
    """
    global _writer  # one writer per process
    flush_logging()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else _TextFormatter(_TEXT))
    with _writer_lock:
        _writer = _Writer(handler)
        _lean_records(True)
        logging.basicConfig(level=level, handlers=[_Handoff(_writer.queue)], force=True)
