"""The records of the synthetic population: one `Child` and what each system knows.

One `Child` holds everything any system could know about a child; which
systems actually know the child is recorded on it (`practice`, `school`,
`council`, `youth_justice`), so each simulated system answers only for its own
members, with only the fields that kind of system keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import datetime as dt

__all__ = [
    "SYSTEMS",
    "Child",
    "CouncilRecord",
    "Gender",
    "Involvement",
    "Phase",
    "Place",
    "Practice",
    "ProtectionRecord",
    "RelatedPerson",
    "School",
    "System",
    "YouthJusticeRecord",
    "age_on",
]

System = Literal["gp", "school", "council", "youth_justice"]
Gender = Literal["male", "female", "other", "unknown"]
Phase = Literal["primary", "secondary"]
SYSTEMS: tuple[System, ...] = ("gp", "school", "council", "youth_justice")


@dataclass(frozen=True, slots=True)
class Place:
    """A postal address: street lines, post town, postcode ("LS6 2AB")."""

    lines: tuple[str, ...]
    town: str
    postcode: str


@dataclass(frozen=True, slots=True)
class Practice:
    """A GP practice; `code` is its ODS code."""

    code: str
    name: str
    phone: str
    address: Place


@dataclass(frozen=True, slots=True)
class School:
    """A school; `urn` is its Unique Reference Number."""

    urn: str
    name: str
    phone: str
    address: Place
    phase: Phase


@dataclass(frozen=True, slots=True)
class RelatedPerson:
    """A carer of the child, as the school's contact list records them."""

    given: str
    family: str
    relationship: str
    phone: str
    address: Place


@dataclass(frozen=True, slots=True)
class Involvement:
    """A service involved with the child, as the council (or youth justice) records it.

    For a youth-justice order, `kind` is the programme ("Referral order"),
    `name` the service ("Youth justice service") and `contact` a phone number.
    """

    kind: str
    name: str
    sensitive: bool
    consent_recorded: bool
    contact: str | None


@dataclass(frozen=True, slots=True)
class CouncilRecord:
    """The council's record: shielding, retention consent and services."""

    person_id: str
    shielded: bool
    retention_consent: bool
    involvements: tuple[Involvement, ...]


@dataclass(frozen=True, slots=True)
class ProtectionRecord:
    """The council's child-protection and looked-after register entry for a child.

    `responsible_authority` is the authority responsible for the plan or the care
    (as a connector manifest's `authority` names it).
    """

    child_protection_plan: bool
    looked_after: bool
    responsible_authority: str


@dataclass(frozen=True, slots=True)
class YouthJusticeRecord:
    """The youth justice service's record: its reference, restriction and orders.

    `restricted` is the service's own shielding flag; it is set for every
    child the council shields.
    """

    ref: str
    restricted: bool
    orders: tuple[Involvement, ...]


@dataclass(frozen=True, slots=True)
class Child:
    """One synthetic child and the four systems' knowledge of them.

    `practice`, `school`, `council` and `youth_justice` are `None` when that
    system does not know the child. `youth_justice` and `protection` come last, with
    defaults, because they are drawn after everything else (see `generate`).
    """

    nhs_number: str
    given: tuple[str, ...]
    family: str
    date_of_birth: dt.date
    gender: Gender
    home: Place
    carers: tuple[RelatedPerson, ...]
    practice: Practice | None
    school: School | None
    council: CouncilRecord | None
    youth_justice: YouthJusticeRecord | None = None
    protection: ProtectionRecord | None = None
    """Set only for a child the council knows who has a plan or is looked after; drawn
    last, from a stream of its own (see `generate`)."""

    def known_to(self, system: System) -> bool:
        """True if `system` holds a record of this child."""
        if system == "gp":
            return self.practice is not None
        if system == "school":
            return self.school is not None
        if system == "council":
            return self.council is not None
        return self.youth_justice is not None


def age_on(date_of_birth: dt.date, day: dt.date) -> int:
    """Completed years of age on `day`."""
    before_birthday = (day.month, day.day) < (date_of_birth.month, date_of_birth.day)
    return day.year - date_of_birth.year - before_birthday
