"""`run_checks`: the conformance checks, run in order against one system.

The checks share what they learn (the known children's facts, every call's
duration) through one `_Kit`, so no check asks the system twice for what an
earlier one already has, and `latency` judges every call the kit made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from connectors.conformance.calls import Calls
from connectors.conformance.explicit import (
    Evidence,
    facts_evidence,
    service_items,
    shielding_problem,
    unmapped_records,
)
from connectors.conformance.results import CHECK_NAMES, CheckResult, failed, not_run, passed
from connectors.manifest import ManifestError, load_manifest, manifest_path
from connectors.registry import build_raw_connector
from connectors.rest_json import RestJsonConnector
from gateway.core.facts import DemographicSearch
from gateway.core.nhs import is_valid_nhs_number

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from connectors.base import Connector
    from connectors.manifest import Manifest
    from gateway.core.facts import SourceFacts

__all__ = ["DEFAULT_UNKNOWN_NHS", "run_checks"]

DEFAULT_UNKNOWN_NHS = "9999999999"
"""A valid NHS number (check digit 9) in the 999 test range that no real child has."""

_URL = re.compile(r"^https?://[^\s/]+")


async def run_checks(manifest_ref: str, base_url: str | None, known: Sequence[str],
                     unknown: str | None) -> list[CheckResult]:
    """Check the system `manifest_ref` describes, at `base_url` (default: the manifest's).

    `manifest_ref` is a built-in manifest's name or a file; `known` are NHS
    numbers of children the system knows; `unknown` one it does not (default
    `DEFAULT_UNKNOWN_NHS`). One `CheckResult` per name in `CHECK_NAMES`, in
    that order. Whatever the manifest says or the system answers, it reports; it
    does not raise.
    """
    loaded = _load(manifest_ref, base_url)
    if isinstance(loaded, CheckResult):
        return [loaded, *(not_run(name, "manifest") for name in CHECK_NAMES[1:])]
    manifest, connector, result = loaded
    kit = _Kit(manifest, connector, tuple(known), unknown or DEFAULT_UNKNOWN_NHS)
    results = [result]
    try:
        for check in kit.checks():
            results.append(await check())
            kit.failed_checks.update(r.name for r in results if not r.passed)
    finally:
        await connector.close()
    return results


def _load(reference: str, base_url: str | None) -> tuple[Manifest, Connector, CheckResult] | (
        CheckResult):
    """The manifest pointed at the system, its connector, and the `manifest` check's result."""
    try:
        manifest = load_manifest(reference)
    except ManifestError as exc:
        return failed("manifest", str(exc))
    origin = manifest_path(reference).name
    url = base_url or manifest.base_url
    if url is None:
        return failed("manifest", f"manifest {origin}: base_url: not set (give --base-url)")
    if not _URL.match(url):
        return failed("manifest", "base URL: expected an http:// or https:// URL")
    # Cache off: every check must reach the system itself.
    manifest = manifest.model_copy(update={"base_url": url, "cache_ttl_seconds": 0})
    try:
        # Bare: the kit must see each failure itself, not a retry or an open circuit.
        connector = build_raw_connector(manifest)
    except ManifestError as exc:
        return failed("manifest", str(exc))
    except Exception as exc:  # noqa: BLE001 -- a plugin's constructor may raise anything
        return failed("manifest", f"manifest {origin}: python.plugin: the connector could not "
                                  f"be built ({type(exc).__name__})")
    return manifest, connector, passed(
        "manifest", f"{origin}: {manifest.kind} system {manifest.name!r} of "
                    f"{manifest.authority!r}, timeout {manifest.timeout_seconds:g}s")


def _criteria(facts: SourceFacts | None) -> DemographicSearch | None:
    if facts is None or facts.name is None or facts.date_of_birth is None:
        return None
    return DemographicSearch(family_name=facts.name.family, date_of_birth=facts.date_of_birth)


def _plural(count: int, noun: str, nouns: str) -> str:
    return f"{count} {noun if count == 1 else nouns}"


@dataclass
class _Kit:
    """The checks after `manifest`, and what they have learned so far."""

    manifest: Manifest
    connector: Connector
    known: tuple[str, ...]
    unknown: str
    calls: Calls = field(init=False)
    facts: dict[str, SourceFacts] = field(default_factory=dict)
    """The known children's facts, by NHS number, as far as they could be fetched."""
    found: list[SourceFacts] = field(default_factory=list)
    failed_checks: set[str] = field(default_factory=set)
    _evidence: Evidence | None = None

    def __post_init__(self) -> None:
        self.calls = Calls(self.manifest.timeout_seconds)

    def checks(self) -> list[Callable[[], Awaitable[CheckResult]]]:
        return [self.health, self.known_child, self.unknown_child, self.search,
                self.shielding_explicit, self.consent_explicit, self.latency]

    async def health(self) -> CheckResult:
        outcome = await self.calls.run("health check", self.connector.check())
        if outcome.failure is not None:
            return failed("health", outcome.failure)
        return passed("health", f"healthy, in {self.calls.made[-1].seconds * 1000:.0f} ms")

    async def known_child(self) -> CheckResult:
        if not self.known:
            return failed("known_child", "give --nhs with a child the system knows")
        problems = [f"{nhs}: {problem}" for nhs in self.known
                    if (problem := await self._known(nhs)) is not None]
        if problems:
            return failed("known_child", "; ".join(problems))
        return passed("known_child", f"{_plural(len(self.known), 'child', 'children')} found, "
                                     f"every provided fact stated: {', '.join(self.known)}")

    async def _known(self, nhs: str) -> str | None:
        """Why the system's answer for `nhs` is not conformant, or `None`."""
        if not is_valid_nhs_number(nhs):
            return "not a valid NHS number"
        outcome = await self.calls.run("lookup", self.connector.fetch(nhs))
        if outcome.failure is not None:
            return outcome.failure
        facts = outcome.value
        if facts is None:
            return "not known to the system (give a child it knows)"
        self.facts[nhs] = facts
        missing = [name for name in self.manifest.provides if getattr(facts, name) is None]
        return f"does not state {', '.join(missing)}" if missing else None

    async def unknown_child(self) -> CheckResult:
        nhs = self.unknown
        if not is_valid_nhs_number(nhs):
            return failed("unknown_child", f"{nhs}: not a valid NHS number")
        if nhs in self.known:
            return failed("unknown_child", f"{nhs}: also given as a known child; give "
                                           "--unknown-nhs a number the system does not know")
        outcome = await self.calls.run("lookup", self.connector.fetch(nhs))
        if outcome.failure is not None:
            return failed("unknown_child", f"{nhs}: {outcome.failure}, where an empty answer "
                                           "(not known) was expected")
        if outcome.value is not None:
            return failed("unknown_child", f"{nhs}: the system answered a record; give "
                                           "--unknown-nhs a number it does not know")
        return passed("unknown_child", f"{nhs}: not known, as expected")

    def _declares_search(self) -> bool:
        rest = self.manifest.rest
        return self.manifest.kind == "fhir_r4" or (rest is not None and rest.search is not None)

    def _first_criteria(self) -> tuple[str, DemographicSearch | None] | None:
        """The first known child's NHS number and search criteria; `None` if never fetched."""
        if not self.known or self.known[0] not in self.facts:
            return None
        return self.known[0], _criteria(self.facts[self.known[0]])

    async def search(self) -> CheckResult:
        if not self._declares_search():
            return passed("search", "not declared")
        first = self._first_criteria()
        if first is None:
            return not_run("search", "known_child")
        nhs, criteria = first
        if criteria is None:
            return failed("search", f"{nhs}: no family name and date of birth to search by")
        outcome = await self.calls.run("search", self.connector.search(criteria))
        if outcome.failure is not None:
            return failed("search", f"by {nhs}'s family name and date of birth: "
                                    f"{outcome.failure}")
        self.found = outcome.value or []
        results = _plural(len(self.found), "result", "results")
        if any(facts.nhs_number == nhs for facts in self.found):
            return passed("search", f"{nhs} found by family name and date of birth "
                                    f"({results})")
        return failed("search", f"{nhs} not found by family name and date of birth ({results})")

    async def _records(self) -> Evidence:
        """The records the explicit-flag checks read, gathered once."""
        if self._evidence is None:
            if isinstance(self.connector, RestJsonConnector):
                first = self._first_criteria()
                criteria = None if first is None else first[1]
                known = [nhs for nhs in self.known if is_valid_nhs_number(nhs)]
                self._evidence = await unmapped_records(self.connector, self.calls, known,
                                                        criteria)
            else:
                self._evidence = facts_evidence(
                    [*self.facts.items(), *(("search", facts) for facts in self.found)])
        return self._evidence

    def _unread(self, name: str, evidence: Evidence) -> CheckResult | None:
        """The result of check `name` when there are no records to read."""
        if evidence.records:
            return None
        if "known_child" in self.failed_checks:
            return not_run(name, "known_child")
        return failed(name, "; ".join(evidence.failures) or "no records to read")

    async def shielding_explicit(self) -> CheckResult:
        if not self.manifest.records_shielding:
            return passed("shielding_explicit", "system does not record shielding")
        evidence = await self._records()
        unread = self._unread("shielding_explicit", evidence)
        if unread is not None:
            return unread
        problems = [*evidence.failures, *(
            f"{origin}: {problem}" for origin, record in evidence.records
            if (problem := shielding_problem(evidence, record)) is not None)]
        if problems:
            return failed("shielding_explicit", "; ".join(problems))
        count = _plural(len(evidence.records), "record states", "records state")
        return passed("shielding_explicit", f"{count} shielding as true or false")

    async def consent_explicit(self) -> CheckResult:
        if "services" not in self.manifest.provides:
            return passed("consent_explicit", "no services")
        evidence = await self._records()
        unread = self._unread("consent_explicit", evidence)
        if unread is not None:
            return unread
        problems, items = list(evidence.failures), 0
        for origin, record in evidence.records:
            count, problem = service_items(evidence, record)
            items += count
            if problem is not None:
                problems.append(f"{origin}: {problem}")
        if problems:
            return failed("consent_explicit", "; ".join(problems))
        records = _plural(len(evidence.records), "record", "records")
        return passed("consent_explicit", f"{_plural(items, 'service item', 'service items')} "
                                          f"on {records} state sensitive and consent_recorded")

    async def latency(self) -> CheckResult:
        made, timeout = self.calls.made, self.manifest.timeout_seconds
        if not made:
            return not_run("latency", "health")
        late = sorted({call.label for call in made if call.timed_out})
        slowest = max(made, key=lambda call: call.seconds)
        ms = f"{slowest.seconds * 1000:.0f} ms ({slowest.label})"
        if late:
            count = sum(call.timed_out for call in made)
            return failed("latency", f"no answer within {timeout:g}s to {count} of {len(made)} "
                                     f"calls ({', '.join(late)})")
        if slowest.seconds > timeout:
            return failed("latency", f"slowest call {ms}, over the {timeout:g}s timeout")
        return passed("latency", f"slowest of {len(made)} calls took {ms}, within the "
                                 f"{timeout:g}s timeout")
