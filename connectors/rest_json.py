"""The shape shared by REST JSON systems: one records endpoint, one health endpoint.

A subclass names its paths and parameters and how to read its answer; the
lookups, searches and health check are the same for every such system (the
first step towards councils describing a system in a manifest, not in code).
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, ClassVar

from connectors.http import HttpConnector
from connectors.shape import ShapeError, obj

if TYPE_CHECKING:
    from connectors.facts import DemographicSearch, SourceFacts

__all__ = ["RestJsonConnector"]


class RestJsonConnector(HttpConnector):
    """`GET RECORDS_PATH?NHS_PARAMETER=...` for a lookup, the same path for searches."""

    RECORDS_PATH: ClassVar[str]
    NHS_PARAMETER: ClassVar[str]
    HEALTH_PATH: ClassVar[str]
    HEALTHY: ClassVar[str]
    """The `status` value of a healthy answer."""

    @staticmethod
    @abc.abstractmethod
    def read_records(raw: object) -> list[SourceFacts]:
        """The records of an answer, as facts (raises `ShapeError`)."""

    async def fetch(self, nhs_number: str) -> SourceFacts | None:
        return self.only_record(await self._records({self.NHS_PARAMETER: nhs_number}),
                                nhs_number)

    async def search(self, criteria: DemographicSearch) -> list[SourceFacts]:
        return await self._records(self.search_parameters(criteria))

    async def check(self) -> None:
        answer = await self._http.get_json(self.HEALTH_PATH)
        with self.parsing():
            if obj(answer, "health").get("status") != self.HEALTHY:
                raise ShapeError(f"health.status: expected {self.HEALTHY}")

    async def _records(self, params: dict[str, str]) -> list[SourceFacts]:
        answer = await self._http.get_json(self.RECORDS_PATH, params)
        with self.parsing():
            return self.read_records(answer)
