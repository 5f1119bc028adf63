"""The typed facts a source system states about one child, and their JSON form.

Every connector, whatever its wire format, answers with `SourceFacts`: the
fields it knows, `None` for those it does not. The JSON form is what the
gateway's cache stores (encrypted), so it must round-trip exactly.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from gateway.core.records import fast_init

__all__ = [
    "Address",
    "Carer",
    "DemographicSearch",
    "Organisation",
    "PersonName",
    "ProtectionStatus",
    "Provenance",
    "Service",
    "SourceFacts",
    "facts_from_json",
    "facts_to_json",
]


@fast_init
@dataclass(frozen=True, slots=True)
class PersonName:
    given: tuple[str, ...]
    family: str


@fast_init
@dataclass(frozen=True, slots=True)
class Address:
    lines: tuple[str, ...]
    postcode: str | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class Organisation:
    name: str
    code: str | None = None
    phone: str | None = None
    address: Address | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class Carer:
    name: PersonName
    relationship: str | None = None
    phone: str | None = None
    address: Address | None = None
    sources: tuple[str, ...] = ()
    """The systems that state this carer (set by the merge; empty in one system's answer)."""


@fast_init
@dataclass(frozen=True, slots=True)
class Service:
    """A service involved with the child, as the council records it."""

    kind: str
    name: str
    sensitive: bool
    consent_recorded: bool
    contact: str | None = None
    sources: tuple[str, ...] = ()
    """The systems that state this service (set by the merge; empty in one system's answer)."""


@fast_init
@dataclass(frozen=True, slots=True)
class ProtectionStatus:
    """Whether the child has a child-protection plan or is looked after, as the council says.

    `responsible_authority` names the authority responsible for the child (its plan or
    care), as a connector manifest's `authority` does (e.g. ``"council:leeds"``): that
    authority is told when the child's record is released (see
    `gateway.accountability.notifications`).
    """

    child_protection_plan: bool
    looked_after: bool
    responsible_authority: str | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class SourceFacts:
    """What one source system says about one child; `None` means "not stated"."""

    nhs_number: str
    name: PersonName | None = None
    date_of_birth: dt.date | None = None
    gender: str | None = None
    address: Address | None = None
    carers: tuple[Carer, ...] | None = None
    school: Organisation | None = None
    practice: Organisation | None = None
    services: tuple[Service, ...] | None = None
    shielded: bool | None = None
    retention_consent: bool | None = None
    protection: ProtectionStatus | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a merged fact came from.

    `sources`: the systems whose value (or, for a list, whose items) it holds.
    `disagreeing`: systems that state another value for a single-valued fact.
    `unavailable`: systems able to state it that did not answer (a list is then
    possibly incomplete; a single value possibly not the authority's).
    """

    sources: tuple[str, ...]
    disagreeing: tuple[str, ...] = ()
    unavailable: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DemographicSearch:
    """Exact-match search attributes, already normalised by the gateway.

    Names are compared case-insensitively with surrounding white space
    removed; postcodes in upper case with single inner space removed
    (e.g. ``"SW1A1AA"``). Connectors pass them to their system as given.
    """

    family_name: str
    date_of_birth: dt.date
    given_name: str | None = None
    postcode: str | None = None


def _name_json(name: PersonName | None) -> dict[str, Any] | None:
    return None if name is None else {"given": list(name.given), "family": name.family}


def _name(raw: dict[str, Any] | None) -> PersonName | None:
    return None if raw is None else PersonName(tuple(raw["given"]), raw["family"])


def _address_json(address: Address | None) -> dict[str, Any] | None:
    return None if address is None else {"lines": list(address.lines), "postcode": address.postcode}


def _address(raw: dict[str, Any] | None) -> Address | None:
    return None if raw is None else Address(tuple(raw["lines"]), raw["postcode"])


def _org_json(org: Organisation | None) -> dict[str, Any] | None:
    if org is None:
        return None
    return {"name": org.name, "code": org.code, "phone": org.phone,
            "address": _address_json(org.address)}


def _org(raw: dict[str, Any] | None) -> Organisation | None:
    if raw is None:
        return None
    return Organisation(raw["name"], raw["code"], raw["phone"], _address(raw["address"]))


def _protection_json(status: ProtectionStatus | None) -> dict[str, Any] | None:
    if status is None:
        return None
    return {"plan": status.child_protection_plan, "looked_after": status.looked_after,
            "authority": status.responsible_authority}


def _protection(raw: dict[str, Any] | None) -> ProtectionStatus | None:
    if raw is None:
        return None
    return ProtectionStatus(raw["plan"], raw["looked_after"], raw["authority"])


def facts_to_json(facts: SourceFacts) -> dict[str, Any]:
    """The JSON-ready form of `facts` (inverse of `facts_from_json`)."""
    return {
        "nhs": facts.nhs_number,
        "name": _name_json(facts.name),
        "dob": None if facts.date_of_birth is None else facts.date_of_birth.isoformat(),
        "gender": facts.gender,
        "address": _address_json(facts.address),
        "carers": None if facts.carers is None else [
            {"name": _name_json(c.name), "relationship": c.relationship, "phone": c.phone,
             "address": _address_json(c.address)}
            for c in facts.carers
        ],
        "school": _org_json(facts.school),
        "practice": _org_json(facts.practice),
        "services": None if facts.services is None else [
            {"kind": s.kind, "name": s.name, "sensitive": s.sensitive,
             "consent": s.consent_recorded, "contact": s.contact}
            for s in facts.services
        ],
        "shielded": facts.shielded,
        "retention": facts.retention_consent,
        "protection": _protection_json(facts.protection),
    }


def facts_from_json(raw: dict[str, Any]) -> SourceFacts:
    """Rebuild `SourceFacts` from `facts_to_json` output; raises KeyError/TypeError if malformed."""
    carers = raw["carers"]
    services = raw["services"]
    dob = raw["dob"]
    name = raw["name"]
    address = raw["address"]
    school = raw["school"]
    practice = raw["practice"]
    # Absent in entries cached before the fact existed (they expire within minutes).
    protection = raw.get("protection")
    return SourceFacts(
        raw["nhs"],
        None if name is None else PersonName(tuple(name["given"]), name["family"]),
        None if dob is None else _from_iso(dob),
        raw["gender"],
        None if address is None else Address(tuple(address["lines"]), address["postcode"]),
        None if carers is None else tuple([
            Carer(_name(c["name"]) or PersonName((), ""), c["relationship"], c["phone"],
                  _address(c["address"]))
            for c in carers
        ]),
        None if school is None else _org(school),
        None if practice is None else _org(practice),
        None if services is None else tuple([
            Service(s["kind"], s["name"], s["sensitive"], s["consent"], s["contact"])
            for s in services
        ]),
        raw["shielded"],
        raw["retention"],
        None if protection is None else ProtectionStatus(
            protection["plan"], protection["looked_after"], protection["authority"]),
    )


_from_iso = dt.date.fromisoformat
