"""The `rest_json` kind: any REST JSON system, described by its manifest alone.

A lookup is ``GET {lookup.path}?{lookup.nhs_parameter}=...``; a search the
same (or `search.path`) with the system's own parameter names and date format;
the records are the array at `lookup.records`, each read by the manifest's
declarative mapping. Health is ``GET {health.path}`` with the expected values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.http import HttpConnector
from connectors.shape import ShapeError, obj

if TYPE_CHECKING:
    from collections.abc import Callable

    from connectors.manifest import Manifest, RestSpec
    from gateway.core.facts import DemographicSearch, SourceFacts

__all__ = ["RestJsonConnector", "json_at"]


def json_at(answer: object, dotted: str) -> object:
    """The value at a dotted JSON path of `answer` (raises `ShapeError` naming the path)."""
    return _json_path(dotted)(answer)


def _json_path(dotted: str) -> Callable[[object], object]:
    """`json_at` for one path, its steps and their names worked out once."""
    steps = dotted.split(".")
    places = ["answer", *(f"answer.{'.'.join(steps[:n])}" for n in range(1, len(steps)))]
    walk = tuple(zip(steps, places, strict=True))

    def at(answer: object) -> object:
        value = answer
        for step, place in walk:
            value = obj(value, place).get(step)
        return value

    return at


class RestJsonConnector(HttpConnector):
    """A REST JSON system mapped to facts by its manifest (no code of its own)."""

    def __init__(self, manifest: Manifest) -> None:
        super().__init__(manifest)
        assert manifest.rest is not None  # noqa: S101 -- the manifest's validator ensures it
        self.rest: RestSpec = manifest.rest
        self.mapper = manifest.mapper(label=f"{self.rest.lookup.records}[]")
        self._records_at = _json_path(self.rest.lookup.records)

    async def fetch(self, nhs_number: str) -> SourceFacts | None:
        records = await self._records(self.rest.lookup.path,
                                      {self.rest.lookup.nhs_parameter: nhs_number})
        return self.only_record(records, nhs_number)

    async def search(self, criteria: DemographicSearch) -> list[SourceFacts]:
        if self.rest.search is None:
            return []
        records = await self.raw_search(criteria)
        with self.parsing():
            return [self.mapper.facts(record) for record in records]

    async def raw_search(self, criteria: DemographicSearch) -> list[object]:
        """The records a demographic search answers, unmapped (empty if none is declared)."""
        search = self.rest.search
        if search is None:
            return []
        names = (search.family_name, search.date_of_birth, search.given_name, search.postcode)
        params = self.search_parameters(criteria, names, search.date_format)
        return await self.raw_records(search.path or self.rest.lookup.path, params)

    async def check(self) -> None:
        health = self.rest.health
        answer = await self._http.get_json(health.path)
        with self.parsing():
            obj(answer, "health")
            for dotted, expected in health.expect.items():
                if json_at(answer, dotted) != expected:
                    raise ShapeError(f"health.{dotted}: not the healthy value")

    async def raw_records(self, path: str, params: dict[str, str]) -> list[object]:
        """The records array of an answer, unmapped (the conformance kit reads it)."""
        answer = await self._http.get_json(path, params)
        with self.parsing():
            return self._records_in(answer)

    def _records_in(self, answer: object) -> list[object]:
        records = self._records_at(answer)
        if not isinstance(records, list):
            raise ShapeError(f"answer.{self.rest.lookup.records}: expected an array")
        return records

    async def _records(self, path: str, params: dict[str, str]) -> list[SourceFacts]:
        answer = await self._http.get_json(path, params)
        # `parsing()`, inline: one try, not two generator-based context managers a call.
        try:
            return [self.mapper.facts(record) for record in self._records_in(answer)]
        except ShapeError as exc:
            raise self.malformed(exc) from exc
