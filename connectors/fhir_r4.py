"""The `fhir_r4` kind: a FHIR R4 server (Patient search with the practice included).

The manifest names the identifier system of NHS numbers and which resources
are read. One request per lookup,
`GET /Patient?identifier={system}|...&_include=Patient:general-practitioner`;
when the server does not honour `_include`, each practice is read with
`GET /Organization/{id}` and kept in a small in-process cache (practices are
organisations, not personal data, and rarely change).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from connectors.fhir import (
    FHIR_JSON,
    INCLUDE_PRACTICE,
    read_bundle_fields,
    read_capability_statement,
    read_organization,
)
from connectors.http import HttpConnector
from connectors.manifest import FhirSpec
from connectors.shape import ShapeError
from gateway.core.facts import SourceFacts

if TYPE_CHECKING:
    from connectors.manifest import Manifest
    from gateway.core.facts import DemographicSearch, Organisation

__all__ = ["FhirR4Connector", "PracticeCache"]


class PracticeCache:
    """Practices by Organization id, each kept `ttl` seconds, at most `size` of them."""

    def __init__(self, ttl: float = 300.0, size: int = 1_024) -> None:
        self._ttl = ttl
        self._size = size
        self._entries: dict[str, tuple[float, Organisation]] = {}

    def get(self, org_id: str) -> Organisation | None:
        entry = self._entries.get(org_id)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, org_id: str, organisation: Organisation) -> None:
        self._entries.pop(org_id, None)
        if len(self._entries) >= self._size:
            # Oldest insertion first: dicts keep insertion order.
            del self._entries[next(iter(self._entries))]
        self._entries[org_id] = (time.monotonic() + self._ttl, organisation)


class FhirR4Connector(HttpConnector):
    """Facts from a FHIR R4 server: name, date of birth, gender, address, practice."""

    ACCEPT = FHIR_JSON
    SEARCH_PARAMETERS = ("family", "birthdate", "given", "address-postalcode")

    def __init__(self, manifest: Manifest, practice_cache: PracticeCache | None = None) -> None:
        super().__init__(manifest)
        self.fhir = manifest.fhir or FhirSpec()
        self._practices = practice_cache if practice_cache is not None else PracticeCache()
        self._reads_practice = "Organization" in self.fhir.resources
        self._includes_practice = self._reads_practice and self.fhir.include_practice

    async def fetch(self, nhs_number: str) -> SourceFacts | None:
        records = await self._patients(
            {"identifier": f"{self.fhir.identifier_system}|{nhs_number}"})
        return self.only_record(records, nhs_number)

    async def search(self, criteria: DemographicSearch) -> list[SourceFacts]:
        return await self._patients(self.search_parameters(criteria, self.SEARCH_PARAMETERS))

    async def check(self) -> None:
        answer = await self._http.get_json("/metadata")
        with self.parsing():
            read_capability_statement(answer)

    async def _patients(self, params: dict[str, str]) -> list[SourceFacts]:
        """The Patients a search with `params` (a dict of the caller's own) answers."""
        if self._includes_practice:
            params["_include"] = INCLUDE_PRACTICE
        answer = await self._http.get_json("/Patient", params)
        # `parsing()`, inline: one try, not a generator-based context manager a call.
        try:
            patients, included = read_bundle_fields(answer, self.fhir.identifier_system)
        except ShapeError as exc:
            raise self.malformed(exc) from exc
        for org_id, organisation in included.items():
            self._practices.put(org_id, organisation)
        # Each Patient's facts built once, with its practice where this system reads it; a
        # loop, not an async comprehension: no coroutine a call unless a practice is read.
        records = []
        for fields, practice_id in patients:
            if practice_id is not None and self._reads_practice:
                practice = self._practices.get(practice_id)
                if practice is None:
                    practice = await self._read_practice(practice_id)
                fields["practice"] = practice
            records.append(SourceFacts(**fields))
        return records

    async def _read_practice(self, org_id: str) -> Organisation:
        answer = await self._http.get_json(f"/Organization/{org_id}")
        with self.parsing():
            _, practice = read_organization(answer)
        self._practices.put(org_id, practice)
        return practice
