"""Whether a system states shielding and consent explicitly, read flag by flag from its records.

For a `rest_json` system the flags are read with the manifest's mapping from
the records exactly as the system sent them (`RestJsonConnector.raw_records`),
one fact at a time, so a record without its shielding flag is reported as
that, not as the record failing to map. A `python` plugin has no records the
kit can see; its facts are read instead.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from connectors.shape import ShapeError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    from connectors.conformance.calls import Calls
    from connectors.mapping import RecordMapper
    from connectors.rest_json import RestJsonConnector
    from gateway.core.facts import DemographicSearch, SourceFacts

__all__ = ["Evidence", "facts_evidence", "service_items", "shielding_problem",
           "unmapped_records"]


@dataclass
class Evidence:
    """The records read, each with its origin (an NHS number given, or ``"search"``),
    and why any could not be read."""

    records: list[tuple[str, object]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    mapper: RecordMapper | None = None
    """Reads a flag from a record; `None` when the records are a plugin's `SourceFacts`."""


async def unmapped_records(connector: RestJsonConnector, calls: Calls, known: Iterable[str],
                           criteria: DemographicSearch | None) -> Evidence:
    """The records the system answers for each known child, and for the search by `criteria`
    (where the manifest declares search), as it sent them."""
    evidence = Evidence(mapper=connector.mapper)
    lookup = connector.rest.lookup
    asked: list[tuple[str, Callable[[], Awaitable[list[object]]]]] = [
        (nhs, functools.partial(connector.raw_records, lookup.path, {lookup.nhs_parameter: nhs}))
        for nhs in known]
    if connector.rest.search is not None and criteria is not None:
        asked.append(("search", functools.partial(connector.raw_search, criteria)))
    for origin, call in asked:
        outcome = await calls.run("unmapped records", call())
        if outcome.failure is not None:
            evidence.failures.append(f"{origin}: {outcome.failure}")
        else:
            evidence.records.extend((origin, record) for record in outcome.value or ())
    return evidence


def facts_evidence(facts: Iterable[tuple[str, SourceFacts]]) -> Evidence:
    """A plugin's mapped facts, read as its records."""
    return Evidence(records=list(facts))


def _fact(evidence: Evidence, record: object, name: str) -> object:
    if evidence.mapper is not None:
        return evidence.mapper.fact(record, name)
    return getattr(record, name, None)


def shielding_problem(evidence: Evidence, record: object) -> str | None:
    """Why `record` does not state shielding as true or false, or `None` if it does."""
    try:
        shielded = _fact(evidence, record, "shielded")
    except ShapeError as exc:
        return f"shielding not stated ({exc})"
    return None if isinstance(shielded, bool) else "shielding not stated as true or false"


def service_items(evidence: Evidence, record: object) -> tuple[int, str | None]:
    """How many service items `record` holds, and why one of them does not state
    `sensitive` and `consent_recorded` as true or false (`None`: all of them do)."""
    try:
        services = _fact(evidence, record, "services")
    except ShapeError as exc:
        return 0, f"service items malformed ({exc})"
    if services is None:
        return 0, None
    if not isinstance(services, tuple):
        return 0, "services not stated as a list"
    for item in services:
        flags = (getattr(item, "sensitive", None), getattr(item, "consent_recorded", None))
        if not all(isinstance(flag, bool) for flag in flags):
            return len(services), "a service item does not state sensitive and consent_recorded"
    return len(services), None
