"""Alerts for the privacy officer: structured events that name people by pseudonym only.

An `Alert` is built by whoever notices the event (budgets, the resolvers that
release a shielded child's location or a sensitive service) and handed to the
configured `AlertSink`: a JSON-lines file by default, or a webhook. A sink never
raises to its caller; a lost alert is logged, and the request goes on.

As a last line of defence a sink pseudonymises a subject that is not already a
pseudonym, and a child that looks like an NHS number, and logs that a caller got
it wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, get_args

import aiohttp

from gateway.settings import ConfigError

if TYPE_CHECKING:
    from gateway.crypto.pseudonyms import Pseudonymiser
    from gateway.settings import AlertSettings

__all__ = [
    "ALERT_KINDS",
    "Alert",
    "AlertKind",
    "AlertSink",
    "FileAlertSink",
    "WebhookAlertSink",
    "open_alert_sink",
]

log = logging.getLogger(__name__)

AlertKind = Literal["budget_warning", "budget_exceeded", "shielded_location_revealed",
                    "sensitive_service_released", "organisation_rate_unusual",
                    "organisation_daily_digest", "responsible_authority_unreachable"]
ALERT_KINDS: frozenset[str] = frozenset(get_args(AlertKind))

_PSEUDONYM = re.compile(r"[0-9a-f]{16}")   # what `Pseudonymiser` produces
_NHS_NUMBER = re.compile(r"\d{3} ?\d{3} ?\d{4}")


@dataclass(frozen=True, slots=True)
class Alert:
    """One event for the privacy officer. `subject` and `child` are pseudonyms.

    `kind` is one of `ALERT_KINDS`; `subject` is a `Pseudonymiser` pseudonym of the
    token's `sub`; `child` a keyed pseudonym of the child (never an NHS number).
    An alert about an organisation rather than a person (the daily digest) has an
    empty `subject`.
    """

    kind: str
    at: dt.datetime
    request_id: str
    subject: str
    organisation: str | None = None
    child: str | None = None
    purpose: str | None = None
    detail: dict[str, str | int | float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ALERT_KINDS:
            raise ValueError(f"unknown alert kind {self.kind!r}")
        if self.at.utcoffset() is None:
            raise ValueError("Alert.at must be timezone-aware")

    def to_json(self) -> dict[str, object]:
        """The alert as a JSON object; `at` is RFC 3339 in UTC."""
        at = self.at.astimezone(dt.UTC).isoformat(timespec="milliseconds")
        return {"kind": self.kind, "at": at.replace("+00:00", "Z"),
                "request_id": self.request_id, "subject": self.subject,
                "organisation": self.organisation, "child": self.child,
                "purpose": self.purpose, "detail": dict(self.detail)}


class AlertSink(Protocol):
    """Delivers alerts somewhere the privacy officer looks. Never raises."""

    async def emit(self, alert: Alert) -> None: ...

    async def close(self) -> None: ...


def _pseudonyms_only(alert: Alert, pseudonym: Pseudonymiser) -> Alert:
    """`alert`, with a clear subject or NHS number replaced by its pseudonym."""
    changes: dict[str, str] = {}
    if alert.subject and not _PSEUDONYM.fullmatch(alert.subject):
        changes["subject"] = pseudonym(alert.subject)
    if alert.child is not None and _NHS_NUMBER.fullmatch(alert.child):
        changes["child"] = pseudonym(alert.child.replace(" ", ""))
    if not changes:
        return alert
    log.warning("%s alert carried %s in clear; pseudonymised at the sink",
                alert.kind, " and ".join(sorted(changes)))
    return dataclasses.replace(alert, **changes)  # type: ignore[arg-type]


def _line(alert: Alert) -> bytes:
    return (json.dumps(alert.to_json(), separators=(",", ":"), sort_keys=True)
            + "\n").encode()


class FileAlertSink:
    """Appends one JSON object per line to a file (mode 0600), one `write` per alert.

    Writes happen in a worker thread, one at a time, so emits from many tasks never
    interleave and never block the event loop. `O_APPEND` keeps lines whole when
    several gateway processes share the file.
    """

    def __init__(self, path: str | os.PathLike[str], pseudonym: Pseudonymiser) -> None:
        self._path = Path(path)
        self._pseudonym = pseudonym
        self._fd: int | None = None
        self._lock = asyncio.Lock()

    async def emit(self, alert: Alert) -> None:
        line = _line(_pseudonyms_only(alert, self._pseudonym))
        async with self._lock:
            try:
                await asyncio.to_thread(self._write, line)
            except OSError as exc:
                # An error, not an exception: the traceback would add nothing.
                log.error("%s alert lost: cannot append to %s (%s)",  # noqa: TRY400
                          alert.kind, self._path, exc.strerror)

    def _write(self, line: bytes) -> None:
        if self._fd is None:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            self._fd = os.open(self._path, flags, 0o600)
        view = memoryview(line)
        while view:
            view = view[os.write(self._fd, view):]

    async def close(self) -> None:
        async with self._lock:
            if self._fd is not None:
                fd, self._fd = self._fd, None
                os.close(fd)


class WebhookAlertSink:
    """POSTs each alert as JSON to a URL, in the background so no request waits on it.

    `emit` only queues; one task delivers, through one `ClientSession` owned by the
    sink, with a short timeout. Failures are logged, not retried or raised. `close`
    waits (briefly) for queued alerts to go out, then closes the session.
    """

    def __init__(self, url: str, pseudonym: Pseudonymiser, *, timeout_seconds: float = 2.0,
                 max_queued: int = 10_000, drain_seconds: float = 5.0) -> None:
        self._url = url
        self._pseudonym = pseudonym
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._drain_seconds = drain_seconds
        self._queue: asyncio.Queue[Alert] = asyncio.Queue(max_queued)
        self._worker: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    async def emit(self, alert: Alert) -> None:
        alert = _pseudonyms_only(alert, self._pseudonym)
        if self._queue.full():
            log.error("%s alert lost: webhook queue full", alert.kind)
            return
        self._queue.put_nowait(alert)
        if self._worker is None:
            self._worker = asyncio.create_task(self._deliver_all(), name="alert-webhook")

    async def _deliver_all(self) -> None:
        while True:
            alert = await self._queue.get()
            try:
                await self._deliver(alert)
            finally:
                self._queue.task_done()

    async def _deliver(self, alert: Alert) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, headers={"User-Agent": "contactpoint-gateway-alerts"})
        try:
            async with self._session.post(self._url, json=alert.to_json()) as response:
                if response.status >= 300:
                    log.warning("%s alert refused by webhook: HTTP %d", alert.kind,
                                response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("%s alert lost: webhook unreachable (%s)", alert.kind,
                        type(exc).__name__)

    async def close(self) -> None:
        if self._worker is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), self._drain_seconds)
            if not self._queue.empty():
                log.error("%d alerts lost: webhook sink closed", self._queue.qsize())
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        if self._session is not None:
            await self._session.close()
            self._session = None


def open_alert_sink(settings: AlertSettings, pseudonym: Pseudonymiser) -> AlertSink:
    """The configured sink; `pseudonym` guards against a caller passing a clear name."""
    if settings.sink == "webhook":
        if settings.webhook_url is None:
            raise ConfigError('alerts.webhook_url is required when alerts.sink = "webhook"')
        return WebhookAlertSink(settings.webhook_url, pseudonym)
    return FileAlertSink(settings.path, pseudonym)
