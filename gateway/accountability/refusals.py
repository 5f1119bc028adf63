"""Refused authentications and requests as audit events, without letting a flood fill the log.

A refusal names no child and releases nothing, so it is not written before the
response (unlike an access): `note` only counts and queues, and a writer task
commits the queue. Within one minute, each source (the keyed pseudonym of the
peer address) gets its first `per_source` refusals recorded one by one, and
all sources together at most `overall`; every refusal beyond is counted, and
when the minute ends one summary event per source, action, outcome and reason
records the count. So a flood of any size writes a bounded number of events:
`overall` singles plus one summary per distinct (source, outcome) a minute,
with the sources tracked per minute capped at `max_sources` (the rest are
summed under the source "other").

If the store is away, the events are logged as lost by number only (never
their content) and the gateway goes on refusing: a refusal must not wait on,
or fail with, the audit store.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.accountability.audit import AuditEvent
from gateway.core.errors import AuditUnavailableError
from gateway.logs import exception_summary

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.accountability.audit import AuditLog

__all__ = ["OTHER_SOURCE", "Refusal", "Refusals"]

logger = logging.getLogger("contactpoint.audit")

OTHER_SOURCE = "other"
"""The summary source of refusals from sources beyond a minute's `max_sources`."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """One refused authentication or request, as `note` takes it.

    `subject` is the authenticated subject when the request was refused after
    authentication (the log says who, as for every access); an unauthenticated
    refusal names nobody, since an unverified token's claims prove nothing.
    """

    action: str  # "authentication" or "request"
    outcome: str  # "refused", "rate_limited" or "bad_request"
    reason: str
    request_id: str
    subject: str = "-"
    organisation: str | None = None
    client_id: str = "-"


_Key = tuple[str, str, str, str, str, str | None, str]  # source, action, outcome, reason, who…


class Refusals:
    """Counts refusals per source and minute; records singles, then summaries."""

    def __init__(self, audit: AuditLog, pseudonymise: Callable[[str], str], *,
                 per_source: int, overall: int, max_sources: int = 10_000,
                 clock: Callable[[], float] = time.time) -> None:
        self._audit = audit
        self._pseudonymise = pseudonymise
        self._per_source, self._overall, self._max_sources = per_source, overall, max_sources
        self._clock = clock
        self._minute = self._now_minute()
        self._by_source: Counter[str] = Counter()
        self._singles = 0
        self._beyond: Counter[_Key] = Counter()
        self._queue: list[AuditEvent] = []
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()
        self._writer: asyncio.Task[None] | None = None

    def _now_minute(self) -> int:
        return int(self._clock() // 60)

    def source_of(self, peer: str | None) -> str:
        """The keyed pseudonym of a peer address (the address itself is never kept)."""
        return self._pseudonymise(f"peer:{peer or 'unknown'}")

    def note(self, refusal: Refusal, peer: str | None) -> None:
        """Count `refusal` from `peer`; queue its event if the minute's thresholds allow."""
        self._roll()
        source = self.source_of(peer)
        if source not in self._by_source and len(self._by_source) >= self._max_sources:
            source = OTHER_SOURCE
        self._by_source[source] += 1
        if self._by_source[source] <= self._per_source and self._singles < self._overall:
            self._singles += 1
            self._enqueue(self._event(refusal, source, dt.datetime.now(dt.UTC), None))
            return
        self._beyond[(source, refusal.action, refusal.outcome, refusal.reason,
                      refusal.subject, refusal.organisation, refusal.client_id)] += 1

    def _roll(self) -> None:
        """At a new minute, queue the last minute's summaries and start counting afresh."""
        minute = self._now_minute()
        if minute != self._minute:
            self._summarise()
            self._minute = minute
            self._by_source.clear()
            self._singles = 0

    def _summarise(self) -> None:
        end = dt.datetime.fromtimestamp((self._minute + 1) * 60, dt.UTC) - dt.timedelta(
            microseconds=1)
        for (source, action, outcome, reason, subject, organisation, client_id), count in \
                sorted(self._beyond.items(), key=lambda item: item[0][:4]):
            summary = Refusal(action, outcome, reason, f"summary-{self._minute}",
                              subject, organisation, client_id)
            self._enqueue(self._event(summary, source, end, count))
        self._beyond.clear()

    @staticmethod
    def _event(refusal: Refusal, source: str, at: dt.datetime, count: int | None) -> AuditEvent:
        return AuditEvent(
            at=at, request_id=refusal.request_id, action=refusal.action,
            outcome=refusal.outcome, subject=refusal.subject,
            organisation=refusal.organisation, client_id=refusal.client_id, purpose=None,
            case_reference=None, child=None, source=source, reason=refusal.reason, count=count)

    def _enqueue(self, event: AuditEvent) -> None:
        self._queue.append(event)
        self._wake.set()

    def start(self) -> None:
        """Start the writer task (in the running loop)."""
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_forever(), name="audit-refusals")

    async def _write_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._seconds_to_next_minute()):
                    await self._wake.wait()
            self._wake.clear()
            self._roll()
            await self.flush()

    def _seconds_to_next_minute(self) -> float:
        return max(0.05, (self._minute + 1) * 60 - self._clock() + 0.05)

    async def flush(self) -> None:
        """Commit the queued events, after any commit in flight; on failure log how many."""
        async with self._flushing:
            batch, self._queue = self._queue, []
            if batch:
                await self._record(batch)

    async def _record(self, batch: list[AuditEvent]) -> None:
        try:
            await self._audit.record(batch)
        except AuditUnavailableError:
            logger.warning("audit store unavailable: %d refusal events not recorded", len(batch))
        except Exception as exc:  # noqa: BLE001 -- the writer must outlive any one failure
            logger.error("%d refusal events not recorded: %s",  # noqa: TRY400 -- no message
                         len(batch), exception_summary(exc))

    async def close(self) -> None:
        """Stop the writer; record what is queued and the current minute's summaries."""
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        self._summarise()
        await self.flush()
