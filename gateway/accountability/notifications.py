"""The responsible council is told: CP-IS style notifications of a protected child's release.

When the record of a child who has a child-protection plan, or is looked after, is
released, the authority responsible for the child (`ProtectionStatus.responsible_authority`,
named as connector manifests name their `authority`) is told who looked — organisation
and roles, not the person unless `[notifications] include_subject` — when, why, and which
groups of fields: nothing it does not already hold but that. The NHS number names the
child (the council holds it already).

A notification is a message in the durable outbox (`OUTBOX_KIND`), committed after the
audit events and before the response leaves (one SQLite commit), so a crash after the
release cannot lose it; the outbox delivers it later, retrying while the authority's
system is down, so that system never delays a response. One per child, organisation and
London day: the outbox's de-duplication key is an HMAC of the child's pseudonym, the
organisation and the date, so the outbox file names neither child nor day in clear.

`NotificationSender` delivers: it asks the systems in service (`Endpoints`) for one whose
authority is the destination and whose manifest declares a notification endpoint.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from gateway.accountability.outbox import OutboxRetryError
from gateway.alerts import Alert
from gateway.core.policy import FIELD_POLICY
from gateway.crypto.keys import derive_hmac

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable, Sequence

    from gateway.accountability.notes import ChildAccess
    from gateway.accountability.outbox import Message, Outbox
    from gateway.alerts import AlertSink
    from gateway.core.caller import Caller
    from gateway.settings import NotificationSettings

__all__ = ["OUTBOX_KIND", "PAYLOAD_KEYS", "Endpoints", "NotificationSender", "Notifications",
           "field_groups", "protected"]

log = logging.getLogger(__name__)

OUTBOX_KIND = "cpis"
PAYLOAD_KEYS = frozenset({"nhs_number", "organisation", "roles", "purpose", "fields", "at"})
"""Everything a notification says (plus `subject` only with `include_subject`)."""
_LONDON = ZoneInfo("Europe/London")


def protected(access: ChildAccess) -> bool:
    """Whether this access released the record of a child on a plan or looked after."""
    status = access.protection
    return (access.action == "child.read" and access.outcome == "released"
            and bool(access.released) and status is not None
            and (status.child_protection_plan or status.looked_after))


def field_groups(released: set[str]) -> list[str]:
    """The groups of fields released, named after the scope that releases each (sorted):
    ``Child.address`` -> ``contact``; the group names the audit report uses."""
    groups = set()
    for key in released:
        scope = FIELD_POLICY[key].scope if key in FIELD_POLICY else None
        if scope is not None and scope.value.startswith("child."):
            groups.add(scope.value.split(".")[1])
    return sorted(groups)


class Endpoints(Protocol):
    """The systems in service that take notifications, by their authority."""

    def reachable(self, authority: str) -> bool:
        """Whether a system of `authority` with a notification endpoint is in service."""
        ...

    async def post(self, authority: str, payload: dict[str, Any], key: str) -> str | None:
        """POST to that system's endpoint with idempotency `key`; its reference.

        Raises `OutboxRetryError` when no such system is in service, or a
        `ConnectorError` when it does not take the notification.
        """
        ...


class Notifications:
    """Builds and enqueues the notifications of one request's releases (see module)."""

    def __init__(self, outbox: Outbox, settings: NotificationSettings, secret: str,
                 child: Callable[[str], str], alerts: AlertSink, endpoints: Endpoints,
                 pseudonymise_subject: Callable[[str], str]) -> None:
        self._outbox = outbox
        self._settings = settings
        self._dedup = derive_hmac(secret, "cpis-dedup")
        self._child = child
        self._alerts = alerts
        self._endpoints = endpoints
        self._subject = pseudonymise_subject

    def dedup_key(self, nhs_number: str, organisation: str, at: dt.datetime) -> str:
        """One notification per child, organisation and London day: an HMAC of the three."""
        day = at.astimezone(_LONDON).date().isoformat()
        text = "\x1f".join((self._child(nhs_number), organisation, day))
        return self._dedup.hexdigest(text.encode())

    def payload(self, caller: Caller, access: ChildAccess, at: dt.datetime) -> dict[str, Any]:
        """What the authority is told: who looked (organisation, roles), when, why, what."""
        assert access.nhs_number is not None  # noqa: S101 -- `protected` accesses name one
        body: dict[str, Any] = {
            "nhs_number": access.nhs_number, "organisation": _organisation(caller),
            "roles": sorted(caller.roles), "purpose": access.purpose,
            "fields": field_groups(access.released), "at": at.isoformat()}
        if self._settings.include_subject:
            body["subject"] = caller.subject
        return body

    async def notify(self, caller: Caller, request_id: str, accesses: Sequence[ChildAccess],
                     at: dt.datetime) -> None:
        """Commit a notification for each protected child released (raises `OutboxError`)."""
        if not self._settings.enabled:
            return
        for access in accesses:
            if not protected(access) or access.nhs_number is None or access.protection is None:
                continue
            authority = access.protection.responsible_authority
            if authority is None:
                await self._unreachable(caller, request_id, access, at, "not stated")
                continue
            key = self.dedup_key(access.nhs_number, _organisation(caller), at)
            put = await self._outbox.put(OUTBOX_KIND, authority,
                                         self.payload(caller, access, at), dedup_key=key)
            if put is not None and not self._endpoints.reachable(authority):
                # Kept and retried (the authority may register its system), but someone
                # must know the council is not being told.
                await self._unreachable(caller, request_id, access, at, "no endpoint")

    async def _unreachable(self, caller: Caller, request_id: str, access: ChildAccess,
                           at: dt.datetime, why: str) -> None:
        child = self._child(access.nhs_number or "")
        log.warning("cpis: cannot tell the responsible authority of child %s (%s)", child, why)
        await self._alerts.emit(Alert(
            kind="responsible_authority_unreachable", at=at, request_id=request_id,
            subject=self._subject(caller.subject), organisation=caller.organisation,
            child=child, purpose=access.purpose, detail={"reason": why}))


def _organisation(caller: Caller) -> str:
    """The looking organisation; a token without one is named by its client."""
    return caller.organisation or f"client:{caller.client_id}"


class NotificationSender:
    """The outbox's sender for `OUTBOX_KIND`: POSTs to the destination authority's system."""

    def __init__(self, endpoints: Endpoints) -> None:
        self._endpoints = endpoints

    async def __call__(self, message: Message) -> str | None:
        if not self._endpoints.reachable(message.destination):
            raise OutboxRetryError(f"no system of {message.destination} takes notifications")
        return await self._endpoints.post(message.destination, message.payload, message.id)
