"""Challenging a released value: routed to the system that supplied it, through the outbox.

A practitioner who was released a field of a child (in the audit log: a `child.read`
event of theirs, under the same purpose, releasing that field), or the child or parent
through `subject.self`, may say a value is wrong. The gateway finds the system that
supplied it (the merge's provenance, read live as every lookup is), and commits a
message to the durable outbox for that system's challenge endpoint (its manifest's
`[challenges]`); the outbox retries until the system acknowledges. The gateway keeps
no copy of the value nor of the reason: the reason travels only inside the encrypted
outbox payload, deleted once delivered; the audit log records who challenged which
field of which (pseudonymous) child, and where it was sent.

A challenge's id is the outbox message id with a MAC binding it to the challenger
(subject and client): nobody else can read its state, and nothing needs storing to
know whose it is.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from connectors.errors import ConnectorError, ConnectorProtocolError
from connectors.http import HttpConnector
from connectors.resilience.wrapper import unwrap
from gateway.accountability.notes import ChildAccess
from gateway.accountability.outbox import OutboxError, OutboxRetryError
from gateway.core.errors import (
    BadUserInputError,
    ForbiddenError,
    GatewayError,
    NotFoundError,
    UpstreamUnavailableError,
)
from gateway.core.merge import LIST_FACTS
from gateway.core.nhs import normalise_nhs_number
from gateway.core.policy import FIELD_POLICY, Access, Scope, decide
from gateway.crypto.keys import derive_key

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from connectors.manifest import ChallengeSpec
    from gateway.accountability.outbox import Message, Outbox
    from gateway.core.caller import Caller
    from gateway.core.policy import ChildState
    from gateway.lookup.pipeline import AccessHistory, Lookup
    from gateway.lookup.registry import Registry
    from gateway.lookup.sources import ChildSources

__all__ = ["CHALLENGE_KIND", "MAX_REASON", "ChallengeState", "Challenges",
           "ChallengesNotTakenError", "Made", "parse_field"]

CHALLENGE_KIND = "challenge"
MAX_REASON = 2_000
MAX_REFERENCE = 100
HISTORY_SCAN = 2_000
"""How many of the child's newest audit events are read to find the caller's release."""
_FIELD = re.compile(r"^Child\.([a-zA-Z]+)(?:\[(\d{1,4})\])?((?:\.[a-zA-Z]+){0,4})$")
_REFERENCE = re.compile(r"^[\x20-\x7e]{1,100}$")
_MAC_HEX = 32


class Record(Protocol):
    """Makes audit events durable now (raises `AuditUnavailableError`)."""

    async def __call__(self, caller: Caller, request_id: str,
                       accesses: Sequence[ChildAccess]) -> None: ...



def _child(lookup: Lookup, child_id: str | None, nhs_number: str | None) -> str | None:
    """The challenged child: by `childId`, or for the child or a parent by NHS number.

    `nhsNumber` is for `subject.self` tokens only (the child or a parent has no
    `childId`: those come from a practitioner's search); whether it is the
    token's own child is `_allowed`'s to decide, as for an id.
    """
    caller = lookup.caller
    if (child_id is None) == (nhs_number is None):
        raise BadUserInputError("Name the child by childId or by nhsNumber, not both.")
    if child_id is not None:
        return lookup.services.ids.decode(child_id, caller.client_id)
    if Scope.SUBJECT_SELF not in caller.scopes or caller.subject_nhs_number is None:
        raise ForbiddenError(f"nhsNumber is for the child's or a parent's own token "
                             f"({Scope.SUBJECT_SELF.value}); practitioners use childId.")
    return normalise_nhs_number(nhs_number or "")

class ChallengesNotTakenError(GatewayError):
    """The system that supplied the value takes no challenges through the gateway."""

    code = "CHALLENGES_NOT_TAKEN"


@dataclass(frozen=True, slots=True)
class Target:
    """A challenged field: its policy key, the fact behind it, the item of a list."""

    key: str
    fact: str
    index: int | None


def parse_field(path: str) -> Target:
    """`Child.address`, `Child.education.school.name`, `Child.services[1].contact`, ..."""
    match = _FIELD.match(path)
    key = None if match is None else f"Child.{match[1]}"
    rule = None if key is None else FIELD_POLICY.get(key)
    if match is None or key is None or rule is None or not rule.source_fields:
        raise BadUserInputError(
            "field must name a value of the child, such as \"Child.address\", "
            "\"Child.education.school.name\" or \"Child.services[0]\".", field="field")
    fact = rule.source_fields[0]
    index = None if match[2] is None else int(match[2])
    if index is not None and fact not in LIST_FACTS:
        raise BadUserInputError(f"{key} is not a list: name it without an index.",
                                field="field")
    return Target(key, fact, index)


@dataclass(frozen=True, slots=True)
class Made:
    """A challenge just made: its id, state, the system it goes to, whom to contact."""

    id: str
    state: str
    system: str
    contact: str


@dataclass(frozen=True, slots=True)
class ChallengeState:
    """What the challenger may know of a challenge: where it went and how far it got."""

    id: str
    state: str
    """"PENDING" (accepted, not yet acknowledged), "ACKNOWLEDGED" or "RESOLVED"."""
    system: str
    contact: str | None
    sent_at: dt.datetime
    acknowledged_at: dt.datetime | None
    resolved_at: dt.datetime | None


class Challenges:
    """Makes challenges, delivers them (the outbox's sender) and reports their state."""

    def __init__(self, outbox: Outbox, registry: Registry, id_secret: str,
                 history: AccessHistory, record: Record) -> None:
        self._outbox = outbox
        self._registry = registry
        self._mac_key = derive_key(id_secret, "challenge-id")
        self._history = history
        self._record = record

    def _mac(self, caller: Caller, message_id: str) -> str:
        text = f"{caller.client_id}\x00{caller.subject}\x00{message_id}".encode()
        return hmac.new(self._mac_key, text, hashlib.sha256).hexdigest()[:_MAC_HEX]

    def _id(self, caller: Caller, message_id: str) -> str:
        return f"{message_id}.{self._mac(caller, message_id)}"

    def _message_id(self, caller: Caller, challenge_id: str) -> str | None:
        message_id, _, mac = challenge_id.partition(".")
        if len(challenge_id) > 100 or not hmac.compare_digest(
                mac.encode(), self._mac(caller, message_id).encode()):
            return None
        return message_id

    async def make(self, lookup: Lookup, child_id: str | None, purpose: str, path: str,
                   reason: str, reference: str | None, nhs_number: str | None = None) -> Made:
        """Authorise, route and commit one challenge (audited as `challenge.create`)."""
        nhs = _child(lookup, child_id, nhs_number)
        note = ChildAccess("challenge.create", purpose, None, nhs)
        note.outcome = "refused"  # until committed: an unexpected failure is no release
        try:
            return await self._make(lookup, note, nhs, purpose, path, reason, reference)
        except Exception as exc:
            if note.outcome != "applied":  # a refusal: recorded with the request's events
                code = exc.code if isinstance(exc, GatewayError) else ""
                note.outcome = _OUTCOMES.get(code, "refused")
                lookup.note(note)
            raise

    async def _make(self, lookup: Lookup, note: ChildAccess, nhs: str | None, purpose: str,
                    path: str, reason: str, reference: str | None) -> Made:
        target = parse_field(path)
        _check_text(reason, reference)
        if nhs is None:
            raise NotFoundError
        if not await self._allowed(lookup.caller, nhs, purpose, target.key):
            note.withheld[target.key] = ForbiddenError.code
            raise ForbiddenError(
                f"Only someone released {target.key} of this child under {purpose}, or the "
                f"child or parent ({Scope.SUBJECT_SELF.value}), may challenge it.")
        sources = await lookup.load(nhs)
        system = _supplier(lookup, sources, target, purpose, self._provides)
        note.released.add(target.key)
        note.sources = (system,)
        spec = self._spec(system)
        if spec is None or spec.path is None:
            contact = "the organisation responsible for it" if spec is None else spec.contact
            raise ChallengesNotTakenError(
                f"The {system} system takes no challenges through the gateway; "
                f"contact: {contact}.", system=system, contact=contact)
        caller = lookup.caller
        # Audited before it is queued, so nothing reaches a system that the log does not
        # show (a failure after this leaves an `applied` event for a challenge not queued:
        # the caller gets an error and tries again).
        note.outcome = "applied"
        await self._record(caller, lookup.request_id, [note])
        payload: dict[str, Any] = {
            "nhsNumber": nhs, "field": path, "reason": reason, "reference": reference,
            "purpose": purpose, "organisation": caller.organisation,
            "challenger": caller.subject, "madeAt": dt.datetime.now(dt.UTC).isoformat()}
        try:
            message_id = await self._outbox.put(CHALLENGE_KIND, system, payload)
        except OutboxError:
            message_id = None
        if message_id is None:  # the file failed (no dedup_key: never a duplicate)
            raise UpstreamUnavailableError("The challenge could not be queued; try again.")
        return Made(self._id(caller, message_id), "PENDING", system, spec.contact)

    def _provides(self, system: str) -> frozenset[str]:
        found = self._registry.current.get(system)
        return frozenset() if found is None else found.manifest.facts

    def _spec(self, system: str) -> ChallengeSpec | None:
        found = self._registry.current.get(system)
        return None if found is None else found.manifest.challenges

    async def _allowed(self, caller: Caller, nhs: str, purpose: str, key: str) -> bool:
        own = caller.subject_nhs_number
        if Scope.SUBJECT_SELF in caller.scopes and own is not None:
            return normalise_nhs_number(own) == nhs
        events = await self._history(nhs, HISTORY_SCAN)
        return any(e.action == "child.read" and e.outcome == "released"
                   and e.subject == caller.subject and e.purpose == purpose
                   and key in e.released for e in events)

    async def deliver(self, message: Message) -> str:
        """The outbox's sender for challenges: POST to the system; its id for the challenge."""
        system = self._registry.current.get(message.destination)
        spec = None if system is None else system.manifest.challenges
        if system is None or spec is None or spec.path is None:
            raise OutboxRetryError  # removed or changed meanwhile: kept until it is back
        connector = unwrap(system.connector)
        if not isinstance(connector, HttpConnector):
            raise OutboxRetryError
        answer = await connector.post_json(spec.path, message.payload,
                                           {"Idempotency-Key": message.id})
        reference = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(reference, str) or not reference:
            raise ConnectorProtocolError(system.name, "challenge answer without an id")
        return reference

    async def state(self, caller: Caller, challenge_id: str) -> ChallengeState:
        """The challenge's state, for its challenger only (NOT_FOUND for anyone else)."""
        message_id = self._message_id(caller, challenge_id)
        delivery = None if message_id is None else await self._outbox.state(message_id)
        if delivery is None or delivery.kind != CHALLENGE_KIND:
            raise NotFoundError
        resolved_at = None
        if delivery.state == "delivered" and delivery.reference is not None:
            resolved_at = await self._resolved_at(delivery.destination, delivery.reference)
        state = ("RESOLVED" if resolved_at is not None
                 else "ACKNOWLEDGED" if delivery.state == "delivered" else "PENDING")
        spec = self._spec(delivery.destination)
        return ChallengeState(challenge_id, state, delivery.destination,
                              None if spec is None else spec.contact, delivery.created_at,
                              delivery.delivered_at, resolved_at)

    async def _resolved_at(self, name: str, reference: str) -> dt.datetime | None:
        """When the source says it resolved the challenge (None: not, or it cannot say now)."""
        system = self._registry.current.get(name)
        spec = None if system is None else system.manifest.challenges
        connector = None if system is None else unwrap(system.connector)
        if spec is None or spec.path is None or not isinstance(connector, HttpConnector):
            return None
        try:
            answer = await connector.get_json(f"{spec.path}/{quote(reference, safe='')}")
        except ConnectorError:
            return None  # the source is down: what the gateway knows is still true
        if not isinstance(answer, dict) or answer.get("state") != "resolved":
            return None
        try:
            return dt.datetime.fromisoformat(str(answer.get("resolvedAt")))
        except ValueError:
            return dt.datetime.now(dt.UTC)


_OUTCOMES = {"NOT_FOUND": "not_found", "BAD_USER_INPUT": "bad_request",
             "UPSTREAM_UNAVAILABLE": "upstream_unavailable"}


def _check_text(reason: str, reference: str | None) -> None:
    if not reason.strip() or len(reason) > MAX_REASON:
        raise BadUserInputError(f"reason must be 1 to {MAX_REASON} characters.", field="reason")
    if reference is not None and not _REFERENCE.match(reference):
        raise BadUserInputError(f"reference must be 1 to {MAX_REFERENCE} printable ASCII "
                                "characters.", field="reference")


def _supplier(lookup: Lookup, sources: ChildSources, target: Target, purpose: str,
              provides: Callable[[str], frozenset[str]]) -> str:
    """The system that supplied the challenged value (by provenance)."""
    merged = sources.merged
    if merged.status == "unavailable":
        raise UpstreamUnavailableError("No system holding children's records answered.")
    state = merged.state
    if state is None:
        raise NotFoundError
    where = state.provenance.get(target.fact)
    if where is None:
        return _failed_supplier(sources, target, provides)
    if target.index is None:
        if len(where.sources) == 1:
            return where.sources[0]
        raise BadUserInputError(
            f"{target.key} is stated by several systems: name one item, such as "
            f"\"{target.key}[0]\".", field="field")
    items = _items(lookup, state, target.fact, purpose)
    if target.index >= len(items):
        raise BadUserInputError(f"{target.key} has no item {target.index}.", field="field")
    item_sources: tuple[str, ...] = items[target.index].sources
    return item_sources[0]


def _items(lookup: Lookup, state: ChildState, fact: str, purpose: str) -> tuple[Any, ...]:
    """The list as the caller was shown it: sensitive items it may not see are left out."""
    everything: tuple[Any, ...] = getattr(state.facts, fact) or ()
    if Scope.SUBJECT_SELF in lookup.caller.scopes:
        return everything
    access = Access.of(lookup.caller.scopes, purpose, None, lookup.services.purposes)
    visible = decide(access, state).items.get(fact)
    return everything if visible is None else visible


def _failed_supplier(sources: ChildSources, target: Target,
                     provides: Callable[[str], frozenset[str]]) -> str:
    """The value is missing now: the one system able to state it that did not answer."""
    failed = [o.connector for o in sources.bundle.outcomes if o.status == "unavailable"]
    able = [name for name in failed if target.fact in provides(name)]
    if len(able) == 1:
        return able[0]
    if able:
        raise UpstreamUnavailableError(
            "The system that supplied this value does not answer now; try again later.")
    raise BadUserInputError(f"The child's record holds no {target.key}.", field="field")

