"""Audit events: who looked at which child, why, what was released and what was withheld.

An event names the child only by a keyed pseudonym (`child_pseudonym`), so the
log cannot itself become an index of children. Its canonical form (`encode`:
JSON, sorted keys, no spaces, UTF-8) is what the hash chain covers.
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.core.records import fast_init
from gateway.crypto.keys import derive_hmac

__all__ = ["ACTIONS", "OUTCOMES", "AuditEvent", "child_pseudonym", "decode", "encode",
           "format_at", "parse_at"]

ACTIONS = frozenset({"child.read", "children.search", "access_report.read",
                     "authentication", "request", "connector.register", "connector.remove",
                     "challenge.create"})
"""`authentication` and `request` record refusals before any child is looked up: a token
refused, or an authenticated request refused whole (rate limit, malformed document).
`connector.register` and `connector.remove` record a change to the systems in service
(outcome `applied`, the system in `sources`, its authority and manifest version in
`reason`) or its refusal (the one-line reason); they name no child.
`challenge.create` records a challenge to one released value: the field's policy key in
`released`, the system it was routed to in `sources`, outcome `applied` (committed to the
outbox; not a release, so no access report lists it) or a refusal. Never the reason."""
OUTCOMES = frozenset({"released", "refused", "not_found", "upstream_unavailable",
                      "budget_exceeded", "rate_limited", "bad_request", "applied"})
_AT_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_PSEUDONYM = re.compile(r"^[0-9a-f]{64}$")
_FIELDS = ("at", "request_id", "action", "outcome", "subject", "organisation", "client_id",
           "purpose", "case_reference", "child", "released", "withheld", "sources")
_OPTIONAL = ("source", "reason", "count")
_DICOM = "http://dicom.nema.org/resources/ontology/DCM"
_FHIR_EXPORT = {"system": _DICOM, "code": "110106", "display": "Export"}
_FHIR_AUTHENTICATION = {"system": _DICOM, "code": "110114", "display": "User Authentication"}
"""Written only when set, so events without them encode exactly as before they existed."""


def child_pseudonym(secret: str, nhs_number: str) -> str:
    """The child's name in the log: HMAC-SHA256 of the NHS number, hex.

    Keyed (with a key derived from `secret`), so nobody without the secret can
    test a guessed NHS number against the log; stable for the secret's
    lifetime, so `accessReport` can find a child's events.
    """
    return derive_hmac(secret, "audit-child").hexdigest(nhs_number.encode())


def format_at(at: datetime.datetime) -> str:
    """An aware time as the log writes it: UTC, microseconds, `Z` (sorts as text)."""
    utc = at.astimezone(datetime.UTC)
    if utc.year < 1000:  # strftime writes such a year unpadded; isoformat would pad it
        return utc.strftime(_AT_FORMAT)
    # The same text as strftime(_AT_FORMAT), at half the cost: "+00:00" becomes "Z".
    return utc.isoformat(timespec="microseconds")[:-6] + "Z"


def parse_at(text: str) -> datetime.datetime:
    """The aware UTC time `format_at` wrote; raises ValueError for anything else."""
    return datetime.datetime.strptime(text, _AT_FORMAT).replace(tzinfo=datetime.UTC)


@fast_init
@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One access to a child's record, or one refusal (after FHIR AuditEvent).

    `subject` (the token's `sub`) is kept in clear: the log must say who looked.
    The child is kept only as a pseudonym; construction refuses anything else.
    """

    at: datetime.datetime
    request_id: str
    action: str
    outcome: str
    subject: str
    organisation: str | None
    client_id: str
    purpose: str | None
    case_reference: str | None
    child: str | None
    released: tuple[str, ...] = ()
    withheld: tuple[tuple[str, str], ...] = ()
    sources: tuple[str, ...] = ()
    source: str | None = None
    """A refusal's origin: the keyed pseudonym of the peer address (never the address)."""
    reason: str | None = None
    """A refusal's rule (such as "expired" or "invalid_claim: aud"); never a value."""
    count: int | None = None
    """A summary event: how many refusals like this one the minute saw beyond the
    threshold (recorded one by one up to it)."""

    def __post_init__(self) -> None:
        if self.at.utcoffset() is None:
            raise ValueError("AuditEvent.at must be timezone-aware")
        object.__setattr__(self, "at", self.at.astimezone(datetime.UTC))
        if self.action not in ACTIONS:
            raise ValueError(f"unknown audit action {self.action!r}")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown audit outcome {self.outcome!r}")
        if self.child is not None and not _PSEUDONYM.match(self.child):
            raise ValueError("AuditEvent.child must be a child_pseudonym(), never an NHS number")
        if self.count is not None and self.count < 1:
            raise ValueError("AuditEvent.count must be positive")

    def to_json(self) -> dict[str, Any]:
        """The event as JSON-ready data; `encode` makes the canonical bytes from it."""
        data = {
            "action": self.action,
            "at": format_at(self.at),
            "case_reference": self.case_reference,
            "child": self.child,
            "client_id": self.client_id,
            "organisation": self.organisation,
            "outcome": self.outcome,
            "purpose": self.purpose,
            "released": list(self.released),
            "request_id": self.request_id,
            "sources": list(self.sources),
            "subject": self.subject,
            "withheld": [[key, reason] for key, reason in self.withheld],
        }
        for key in _OPTIONAL:
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AuditEvent:
        """The event `to_json` produced; raises ValueError for anything else."""
        if not set(_FIELDS) <= set(data) <= set(_FIELDS + _OPTIONAL):
            raise ValueError("not an audit event: wrong keys")
        count = data.get("count")
        if count is not None and (type(count) is not int):
            raise ValueError("not an audit event: count is not an integer")
        try:
            at = parse_at(data["at"])
            withheld = tuple((str(k), str(r)) for k, r in data["withheld"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"not an audit event: {exc}") from None
        return cls(
            at=at,
            request_id=_text(data, "request_id"),
            action=_text(data, "action"),
            outcome=_text(data, "outcome"),
            subject=_text(data, "subject"),
            organisation=_optional(data, "organisation"),
            client_id=_text(data, "client_id"),
            purpose=_optional(data, "purpose"),
            case_reference=_optional(data, "case_reference"),
            child=_optional(data, "child"),
            released=_texts(data, "released"),
            withheld=withheld,
            sources=_texts(data, "sources"),
            source=_optional(data, "source") if "source" in data else None,
            reason=_optional(data, "reason") if "reason" in data else None,
            count=count,
        )

    def to_fhir(self) -> dict[str, Any]:
        """The event as a FHIR R4 AuditEvent resource (for export to a FHIR audit repository)."""
        agent: dict[str, Any] = {"who": {"identifier": {"value": self.subject}},
                                 "requestor": True}
        if self.organisation is not None:
            agent["location"] = {"identifier": {"value": self.organisation}}
        if self.purpose is not None:
            agent["purposeOfUse"] = [{"text": self.purpose}]
        entity: list[dict[str, Any]] = []
        if self.child is not None:
            entity.append({"what": {"identifier": {"value": self.child}}, "role": {"code": "1"},
                           "detail": _fhir_details(self)})
        extension: list[dict[str, Any]] = [
            {"url": "urn:contactpoint:request-id", "valueString": self.request_id}]
        if self.source is not None:
            extension.append({"url": "urn:contactpoint:source", "valueString": self.source})
        if self.reason is not None:
            extension.append({"url": "urn:contactpoint:reason", "valueString": self.reason})
        if self.count is not None:
            extension.append({"url": "urn:contactpoint:count", "valueInteger": self.count})
        return {
            "resourceType": "AuditEvent",
            "type": _FHIR_AUTHENTICATION if self.action == "authentication" else _FHIR_EXPORT,
            "subtype": [{"code": self.action}],
            "action": "R",
            "recorded": format_at(self.at),
            "outcome": "0" if self.outcome in {"released", "applied"} else "4",
            "outcomeDesc": self.outcome,
            "agent": [agent],
            "source": {"observer": {"display": self.client_id},
                       "type": [{"code": name} for name in self.sources]},
            "entity": entity,
            "extension": extension,
        }


def _fhir_details(event: AuditEvent) -> list[dict[str, str]]:
    details = [{"type": "released", "valueString": key} for key in event.released]
    details += [{"type": f"withheld:{reason}", "valueString": key}
                for key, reason in event.withheld]
    if event.case_reference is not None:
        details.append({"type": "case_reference", "valueString": event.case_reference})
    return details


def _text(data: dict[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise ValueError(f"not an audit event: {key} is not a string")  # noqa: TRY004 - one error for any bad input
    return value


def _optional(data: dict[str, Any], key: str) -> str | None:
    return None if data[key] is None else _text(data, key)


def _texts(data: dict[str, Any], key: str) -> tuple[str, ...]:
    values = data[key]
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"not an audit event: {key} is not a list of strings")
    return tuple(values)


def encode(event: AuditEvent) -> bytes:
    """The canonical bytes of an event: JSON, sorted keys, no spaces, UTF-8.

    As `json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)` writes
    them (the definition); orjson writes the same bytes for the strings, lists, null
    and integers of an event, faster. Anything else (a `count` not an int, a value
    orjson refuses) goes through `json` itself.
    """
    data = event.to_json()
    if event.count is None or type(event.count) is int:
        try:
            return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def decode(data: bytes | str) -> AuditEvent:
    """The event whose canonical bytes are `data`; raises ValueError if it is not one."""
    try:
        parsed = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"not an audit event: {exc}") from None
    if not isinstance(parsed, dict):
        raise ValueError("not an audit event: not a JSON object")  # noqa: TRY004 - as above
    return AuditEvent.from_json(parsed)
