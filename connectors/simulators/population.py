"""The synthetic population behind the simulated GP, school, council and youth justice systems.

`Population.generate` builds a deterministic population from a seed (see
`connectors.simulators.generate`); a `Population` answers the lookups a local
system makes: by NHS number, and by exact demographic attributes, each only
among the children that system knows.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from connectors.simulators.generate import FIXTURE_KEYS, generate_children
from connectors.simulators.records import Child, System, age_on

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = [
    "FIXTURE_KEYS",
    "Population",
    "age_on",
    "normalise_name",
    "normalise_postcode",
]


def normalise_name(value: str) -> str:
    """A name as the systems compare it: trimmed, case-folded."""
    return value.strip().casefold()


def normalise_postcode(value: str) -> str:
    """A postcode as the systems compare it: upper case, no spaces."""
    return "".join(value.split()).upper()


class Population:
    """An immutable population with per-system lookups.

    Build one with `Population.generate`; the constructor only indexes.
    """

    def __init__(self, children: Iterable[Child], today: dt.date,
                 fixtures: Mapping[str, str]) -> None:
        self.children: tuple[Child, ...] = tuple(children)
        self.today = today
        self._fixtures = dict(fixtures)
        self._by_nhs = {child.nhs_number: child for child in self.children}
        if len(self._by_nhs) != len(self.children):
            raise ValueError("NHS numbers must be unique")
        self._by_key: dict[tuple[str, dt.date], list[Child]] = {}
        for child in self.children:
            key = (normalise_name(child.family), child.date_of_birth)
            self._by_key.setdefault(key, []).append(child)

    @classmethod
    def generate(cls, seed: int = 2026, size: int = 10_000,
                 today: dt.date | None = None) -> Population:
        """A deterministic population for (`seed`, `size`, `today`).

        `today` (default: the current UTC date) anchors ages. The first seven
        children are the first seven fixtures named by `fixtures()`;
        `multi_service` is a later child (see `connectors.simulators.generate`).
        """
        day = today if today is not None else dt.datetime.now(dt.UTC).date()
        children, fixtures = generate_children(seed, size, day)
        return cls(children, day, fixtures)

    def __len__(self) -> int:
        return len(self.children)

    def fixtures(self) -> dict[str, str]:
        """NHS numbers of example children, keyed by `FIXTURE_KEYS`."""
        return dict(self._fixtures)

    def child(self, nhs_number: str) -> Child | None:
        """The child with this NHS number, whoever knows them."""
        return self._by_nhs.get(nhs_number)

    def lookup(self, system: System, nhs_number: str) -> Child | None:
        """The child with this NHS number if `system` knows them."""
        child = self._by_nhs.get(nhs_number)
        return child if child is not None and child.known_to(system) else None

    def search(self, system: System, family: str, date_of_birth: dt.date,
               given: str | None = None, postcode: str | None = None) -> list[Child]:
        """Children known to `system` matching every attribute given, exactly.

        Names match trimmed and case-insensitively (`given` matches any of the
        child's given names); postcodes match in upper case without spaces.
        """
        candidates = self._by_key.get((normalise_name(family), date_of_birth), ())
        wanted_given = None if given is None else normalise_name(given)
        wanted_postcode = None if postcode is None else normalise_postcode(postcode)
        return [
            child for child in candidates
            if child.known_to(system)
            and (wanted_given is None
                 or wanted_given in (normalise_name(name) for name in child.given))
            and (wanted_postcode is None
                 or wanted_postcode == normalise_postcode(child.home.postcode))
        ]

    def members(self, system: System) -> list[Child]:
        """Every child `system` knows, in population order."""
        return [child for child in self.children if child.known_to(system)]
