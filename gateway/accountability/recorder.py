"""From what a request did to durable audit events and the privacy officer's alerts.

Runs after execution and before the response leaves: the audit events of
every child looked up (released or refused) are made durable first; if that
fails, no data is released. Then the responsible authorities of protected
children released are notified (committed to the outbox, delivered later: see
`notifications`), and alerts go out for the releases the privacy officer watches
(a shielded child's location, a sensitive service).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from gateway.accountability.audit import AuditEvent, child_pseudonym
from gateway.accountability.outbox import OutboxError
from gateway.alerts import Alert
from gateway.core.policy import GUARDED
from gateway.logs import exception_summary

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from gateway.accountability.audit import AuditLog
    from gateway.accountability.notes import ChildAccess
    from gateway.accountability.notifications import Notifications
    from gateway.alerts import AlertSink
    from gateway.core.caller import Caller

__all__ = ["Accountability"]

log = logging.getLogger(__name__)

_LOCATION = frozenset(key for key, rule in GUARDED.items() if rule.reveals_location)


class Accountability:
    """Turns a request's `ChildAccess` notes into audit events and alerts."""

    def __init__(self, audit: AuditLog, alerts: AlertSink,
                 pseudonym_secret: str, pseudonymise_subject: Callable[[str], str]) -> None:
        self.audit = audit
        self.alerts = alerts
        self._secret = pseudonym_secret
        self._subject = pseudonymise_subject
        self.notifications: Notifications | None = None
        """Set once the outbox is open (`open_runtime`); None: nobody is notified."""

    def child(self, nhs_number: str) -> str:
        """The keyed pseudonym of a child, as the audit log and budgets know it."""
        return child_pseudonym(self._secret, nhs_number)

    async def history(self, nhs_number: str, limit: int) -> list[AuditEvent]:
        """The audit log's events about one child, newest first."""
        return await self.audit.for_child(self.child(nhs_number), limit)

    def _pseudonym(self, access: ChildAccess) -> str | None:
        return None if access.nhs_number is None else self.child(access.nhs_number)

    @staticmethod
    def _event(caller: Caller, request_id: str, access: ChildAccess, child: str | None,
               at: dt.datetime) -> AuditEvent:
        return AuditEvent(
            at=at, request_id=request_id, action=access.action, outcome=access.outcome,
            subject=caller.subject, organisation=caller.organisation, client_id=caller.client_id,
            purpose=access.purpose, case_reference=access.case_reference, child=child,
            released=tuple(sorted(access.released)),
            withheld=tuple(sorted(access.withheld.items())), sources=access.sources)

    async def record(self, caller: Caller, request_id: str,
                     accesses: Sequence[ChildAccess]) -> None:
        """Make the request's events durable (raises AuditUnavailableError), then alert."""
        if not accesses:
            return
        at = dt.datetime.now(dt.UTC)
        children = [self._pseudonym(a) for a in accesses]  # one HMAC each, for event and alerts
        await self.audit.record([self._event(caller, request_id, a, child, at)
                                 for a, child in zip(accesses, children, strict=True)])
        if self.notifications is not None:
            await self._notify(caller, request_id, accesses, at)
        for access, child in zip(accesses, children, strict=True):
            for kind in self._alert_kinds(access):
                await self.alerts.emit(Alert(
                    kind=kind, at=at, request_id=request_id,
                    subject=self._subject(caller.subject), organisation=caller.organisation,
                    child=child, purpose=access.purpose, detail={}))

    async def _notify(self, caller: Caller, request_id: str, accesses: Sequence[ChildAccess],
                      at: dt.datetime) -> None:
        """Commit the notifications; an outbox that cannot be written does not stop the
        release (it is audited already) but is logged for us, without personal data."""
        assert self.notifications is not None  # noqa: S101 -- checked by the caller
        try:
            await self.notifications.notify(caller, request_id, accesses, at)
        except OutboxError as exc:
            log.error("cpis: the outbox could not be written (%s); notifications of request "  # noqa: TRY400 -- no traceback: messages may hold data
                      "%s are lost", exception_summary(exc), request_id)

    @staticmethod
    def _alert_kinds(access: ChildAccess) -> list[str]:
        kinds = []
        if access.shielded and access.released & _LOCATION:
            kinds.append("shielded_location_revealed")
        if access.sensitive_released:
            kinds.append("sensitive_service_released")
        return kinds
