"""Deterministic generation of the synthetic population.

What the GP, school and council know is drawn from one `random.Random(seed)`
in a fixed order, so a (seed, size, today) triple always yields the same
children. The first seven children are built deliberately with the properties
the first seven `FIXTURE_KEYS` promise; the rest follow rough real-world
proportions (GP ~96 %, school ~90 % of ages 4-17, council ~35 % plus every
shielded child, ~1.5 % shielded).

Youth justice came later: its records are drawn afterwards from a second
stream, `random.Random(f"{seed}:youth_justice")`, so adding that system changed
nothing the other three know. About 3 % of children aged 10-17 have a record
(a fifth of the shielded ones), restricted exactly when the council shields
the child. The `multi_service` fixture is the first generated child who
already fits it (15, known to GP, school and council, unshielded, only
non-sensitive council services, alone with their name and birth date) given a
youth-justice record; a population too small to hold one gets one more child,
built from the second stream, at its end.

The council's child-protection and looked-after register came last, from a third
stream, `random.Random(f"{seed}:protection")`, so again nothing known before
changed: about 2 % of the under-18s the council knows have a child-protection plan
and about 2 % are looked after, most by the council itself (`HOME_AUTHORITY`), some
placed by another authority. The `protection_plan` and `looked_after` fixtures are
the first generated children (not multi_service) who fit (known to GP, school and
council, under 18, unshielded, no sensitive service, no youth-justice record, alone
with their name and birth date), given a plan, or care, by `HOME_AUTHORITY`; in a
population too small to hold such children, any unshielded under-18 the council
knows will do (in one of only the seven built fixtures, the `ordinary` child).
"""

from __future__ import annotations

import bisect
import collections
import datetime as dt
import itertools
import random
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

from connectors.simulators import names
from connectors.simulators.records import (
    Child,
    CouncilRecord,
    Gender,
    Involvement,
    Phase,
    Place,
    Practice,
    ProtectionRecord,
    RelatedPerson,
    School,
    YouthJusticeRecord,
    age_on,
)
from gateway.core.nhs import check_digit

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["FIXTURE_KEYS", "HOME_AUTHORITY", "generate_children"]

FIXTURE_KEYS = (
    "ordinary",
    "shielded",
    "sensitive_consented",
    "sensitive_unconsented",
    "adult_no_consent",
    "adult_consented",
    "school_only",
    "protection_plan",
    "looked_after",
    "multi_service",
)

HOME_AUTHORITY = "council"
"""The simulated council's authority, as its built-in manifest names it."""
_OTHER_AUTHORITIES = ("council:bradford", "council:wakefield")
_PLAN_RATE, _LOOKED_AFTER_RATE, _ELSEWHERE_RATE = 0.02, 0.02, 0.15
_PROTECTION_FIXTURES = {"protection_plan": (True, False), "looked_after": (False, True)}

# Built first, from the main stream; multi_service is chosen afterwards.
_BUILT_FIXTURES = FIXTURE_KEYS[:7]
_MULTI_SERVICE = "multi_service"
_MULTI_SERVICE_AGE = 15
_FIXTURE_AGES = {
    "ordinary": 9, "shielded": 7, "sensitive_consented": 15, "sensitive_unconsented": 14,
    "adult_no_consent": 18, "adult_consented": 18, "school_only": 10,
}
# (kind, consent recorded or None for random) per fixture; contacts always present.
_FIXTURE_SERVICES: dict[str, tuple[tuple[str, bool | None], ...]] = {
    "ordinary": (("Early help", None),),
    "shielded": (("Social care", None),),
    "sensitive_consented": (("Social care", None), ("Sexual health", True)),
    "sensitive_unconsented": (("Early help", None), ("Child and adolescent mental health", False)),
    "adult_no_consent": (("Social care", None),),
    "adult_consented": (("Social care", None),),
    "school_only": (),
}

_T = TypeVar("_T")
_GENDERS: tuple[Gender, ...] = ("female", "male", "other", "unknown")
_GENDER_WEIGHTS = tuple(itertools.accumulate((49, 49, 1, 1)))
_SERVICE_KINDS = tuple(names.SERVICE_NAMES)
_SERVICE_WEIGHTS = (30, 35, 8, 15, 6, 6)
_SERVICE_MIN_AGE = (0, 0, 10, 4, 13, 11)
_FIRST_CARERS = ("Mother", "Father", "Grandmother", "Guardian", "Foster carer", "Aunt")
_FIRST_CARER_WEIGHTS = tuple(itertools.accumulate((60, 20, 8, 5, 4, 3)))
_SECOND_CARERS = {"Mother": ("Father", "Stepfather"), "Father": ("Mother", "Stepmother"),
                  "Grandmother": ("Grandfather",), "Foster carer": ("Foster carer",)}
_FEMALE_ROLES = frozenset({"Mother", "Stepmother", "Grandmother", "Aunt"})
_MALE_ROLES = frozenset({"Father", "Stepfather", "Grandfather"})
_INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
_PRACTICES, _PRIMARIES, _SECONDARIES = 60, 28, 12
_DISTRICTS = dict(names.TOWNS)
_ADULT_NAMES = names.FEMALE_NAMES + names.MALE_NAMES
_OTHER_TOWNS = tuple(town for town, _ in names.TOWNS[1:])
_YJ_AGES = range(10, 18)
_ADULT = 18
_YJ_RATE, _YJ_SHIELDED_RATE = 0.03, 0.2
_YJ_SERVICE = "Youth justice service"
_YJ_PROGRAMMES = ("Referral order", "Youth rehabilitation order", "Out of court disposal",
                  "Bail support")


def years_before(day: dt.date, years: int) -> dt.date:
    """The same calendar day `years` earlier (29 February becomes the 28th)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


class _Builder:
    """Draws every part of the population from one RNG, in a fixed order."""

    def __init__(self, rng: random.Random, today: dt.date) -> None:
        self.rng = rng
        self.today = today
        self._landlines = iter(rng.sample(range(1000), 1000))
        self._nhs_seen: set[str] = set()
        self._serial = 0
        self._yj_serial = 0
        self.practices: dict[str, list[Practice]] = {town: [] for town in _DISTRICTS}
        self.schools: dict[tuple[str, Phase], list[School]] = {
            (town, phase): [] for town in _DISTRICTS for phase in ("primary", "secondary")}
        self._build_organisations()

    def _build_organisations(self) -> None:
        towns = list(_DISTRICTS)
        codes = self.rng.sample(range(10_000, 100_000), _PRACTICES)
        for index, number in enumerate(codes):
            town = towns[index % len(towns)]
            pattern = self.pick(names.PRACTICE_PATTERNS)
            name = pattern.format(place=self.pick(names.NEIGHBOURHOODS))
            code = f"{self.pick('BCDJKLMNPY')}{number}"
            self.practices[town].append(
                Practice(code, name, self.org_phone(), self.place(town)))
        urns = iter(self.rng.sample(range(100_000, 150_000), _PRIMARIES + _SECONDARIES))
        for index in range(_PRIMARIES + _SECONDARIES):
            phase: Phase = "primary" if index < _PRIMARIES else "secondary"
            town = towns[index % len(towns)]
            school = School(str(next(urns)), self._school_name(phase), self.org_phone(),
                            self.place(town), phase)
            self.schools[town, phase].append(school)

    def _school_name(self, phase: str) -> str:
        place = self.pick(names.NEIGHBOURHOODS)
        if self.rng.random() < 0.2:
            kind = "Primary" if phase == "primary" else "High"
            return f"St {self.pick(names.SAINTS)}'s Catholic {kind} School"
        if phase == "primary":
            return f"{place} {self.pick(('Primary School', 'Church of England Primary'))}"
        return f"{place} {self.pick(('High School', 'Academy'))}"

    def pick(self, options: Sequence[_T]) -> _T:
        # random() is one C call; choice() and randrange() cost several Python frames.
        return options[int(self.rng.random() * len(options))]

    def below(self, bound: int) -> int:
        return int(self.rng.random() * bound)

    def weighted(self, options: Sequence[_T], cumulative: Sequence[int]) -> _T:
        return options[bisect.bisect(cumulative, self.rng.random() * cumulative[-1])]

    def org_phone(self) -> str:
        return f"0113 496 0{next(self._landlines):03d}"

    def mobile(self) -> str:
        return f"07700 900{self.below(1000):03d}"

    def nhs_number(self) -> str:
        while True:
            first_nine = str(999_000_000 + self.below(1_000_000))
            digit = check_digit(first_nine)
            number = f"{first_nine}{digit}"
            if digit is not None and number not in self._nhs_seen:
                self._nhs_seen.add(number)
                return number

    def place(self, town: str | None = None) -> Place:
        rng = self.rng
        if town is None:
            town = "Leeds" if rng.random() < 0.6 else self.pick(_OTHER_TOWNS)
        district = self.pick(_DISTRICTS[town])
        inward = f"{self.below(10)}{self.pick(_INWARD_LETTERS)}{self.pick(_INWARD_LETTERS)}"
        street = f"{1 + self.below(159)} {self.pick(names.STREETS)}"
        lines = (f"Flat {1 + self.below(11)}", street) if rng.random() < 0.15 else (street,)
        return Place(lines, town, f"{district} {inward}")

    def dob_for_age(self, low: int, high: int) -> dt.date:
        latest = years_before(self.today, low)
        earliest = years_before(self.today, high + 1) + dt.timedelta(days=1)
        return earliest + dt.timedelta(days=self.below((latest - earliest).days + 1))

    def given_names(self, gender: str) -> tuple[str, ...]:
        pool: tuple[str, ...] = {"female": names.FEMALE_NAMES, "male": names.MALE_NAMES}.get(
            gender, self.pick((names.FEMALE_NAMES, names.MALE_NAMES)))
        if self.rng.random() < 0.3:
            return (self.pick(pool), self.pick(pool))
        return (self.pick(pool),)

    def carer(self, relationship: str, family: str, home: Place) -> RelatedPerson:
        rng = self.rng
        pool: tuple[str, ...]
        if relationship in _FEMALE_ROLES:
            pool = names.FEMALE_NAMES
        elif relationship in _MALE_ROLES:
            pool = names.MALE_NAMES
        else:
            pool = self.pick((names.FEMALE_NAMES, names.MALE_NAMES))
        surname = family if rng.random() < 0.8 else self.pick(names.SURNAMES)
        address = home if rng.random() < 0.85 else self.place()
        return RelatedPerson(self.pick(pool), surname, relationship, self.mobile(), address)

    def carers(self, family: str, home: Place) -> tuple[RelatedPerson, ...]:
        first = self.weighted(_FIRST_CARERS, _FIRST_CARER_WEIGHTS)
        people = [self.carer(first, family, home)]
        if first in _SECOND_CARERS and self.rng.random() < 0.6:
            people.append(self.carer(self.pick(_SECOND_CARERS[first]), family, home))
        return tuple(people)

    def practice_for(self, town: str) -> Practice:
        return self.pick(self.practices[town])

    def school_for(self, town: str, age: int) -> School:
        return self.pick(self.schools[town, "primary" if age <= 10 else "secondary"])

    def involvement(self, kind: str, consent: bool | None = None,
                    contact: bool | None = None) -> Involvement:
        rng = self.rng
        team_names, sensitive = names.SERVICE_NAMES[kind]
        recorded = rng.random() < 0.5 if consent is None else consent
        has_contact = rng.random() < 0.8 if contact is None else contact
        worker = (f"{self.pick(_ADULT_NAMES)} "
                  f"{self.pick(names.SURNAMES)}, 0113 496 0{self.below(1000):03d}")
        return Involvement(kind, self.pick(team_names), sensitive, recorded,
                           worker if has_contact else None)

    def involvements(self, age: int, count: int) -> tuple[Involvement, ...]:
        weights = [w if age >= low else 0 for w, low in
                   zip(_SERVICE_WEIGHTS, _SERVICE_MIN_AGE, strict=True)]
        cumulative = tuple(itertools.accumulate(weights))
        kinds: list[str] = []
        count = min(count, sum(1 for weight in weights if weight))
        while len(kinds) < count:
            kind = self.weighted(_SERVICE_KINDS, cumulative)
            if kind not in kinds:
                kinds.append(kind)
        return tuple(self.involvement(kind) for kind in kinds)

    def person_id(self) -> str:
        self._serial += 1
        return f"CSC{self._serial:07d}"

    def council(self, age: int) -> CouncilRecord | None:
        rng = self.rng
        shielded = rng.random() < 0.015
        involved = rng.random() < 0.35
        if not (shielded or involved):
            return None
        count = self.below(4) if involved else self.below(2)
        retention = age >= 18 and rng.random() < 0.5
        return CouncilRecord(self.person_id(), shielded, retention,
                             self.involvements(age, count))

    def child(self, nhs_number: str, dob: dt.date | None = None,
              family: str | None = None) -> Child:
        rng = self.rng
        if dob is None:
            dob = self.dob_for_age(18, 20) if rng.random() < 0.03 else self.dob_for_age(0, 17)
        age = age_on(dob, self.today)
        gender = self.weighted(_GENDERS, _GENDER_WEIGHTS)
        family = family or self.pick(names.SURNAMES)
        home = self.place()
        practice = self.practice_for(home.town) if rng.random() < 0.96 else None
        # Sixth-formers who have turned 18 are still on the school roll.
        in_school = (4 <= age <= 17 and rng.random() < 0.9) or (age == 18 and rng.random() < 0.35)
        school = self.school_for(home.town, age) if in_school else None
        council = self.council(age)
        if practice is None and school is None and council is None:
            practice = self.practice_for(home.town)
        return Child(nhs_number, self.given_names(gender), family, dob, gender, home,
                     self.carers(family, home), practice, school, council)

    def fixture(self, key: str, nhs_number: str, family: str) -> Child:
        age = _FIXTURE_AGES[key]
        dob = years_before(self.today, age) - dt.timedelta(days=60 + self.below(240))
        base = self.child(nhs_number, dob, family)
        school = self.school_for(base.home.town, age)
        if key == "school_only":
            return replace(base, practice=None, school=school, council=None)
        services = tuple(self.involvement(kind, consent, contact=True)
                         for kind, consent in _FIXTURE_SERVICES[key])
        council = CouncilRecord(self.person_id(), key == "shielded",
                                key == "adult_consented", services)
        return replace(base, practice=self.practice_for(base.home.town), school=school,
                       council=council)

    def multi_service(self, taken: set[tuple[str, dt.date]]) -> Child:
        """A fresh 15-year-old known to GP, school and council (early help), alone by name."""
        while True:
            dob = self.dob_for_age(_MULTI_SERVICE_AGE, _MULTI_SERVICE_AGE)
            family = self.pick(names.SURNAMES)
            if (family.casefold(), dob) not in taken:
                break
        base = self.child(self.nhs_number(), dob, family)
        council = CouncilRecord(self.person_id(), False, False,
                                (self.involvement("Early help", contact=True),))
        return replace(base, practice=self.practice_for(base.home.town),
                       school=self.school_for(base.home.town, _MULTI_SERVICE_AGE),
                       council=council)

    def order(self, programme: str, consent: bool | None = None,
              contact: bool | None = None) -> Involvement:
        rng = self.rng
        recorded = rng.random() < 0.5 if consent is None else consent
        has_contact = rng.random() < 0.8 if contact is None else contact
        phone = f"0113 496 0{self.below(1000):03d}"
        return Involvement(programme, _YJ_SERVICE, False, recorded,
                           phone if has_contact else None)

    def orders(self) -> tuple[Involvement, ...]:
        programmes = [self.pick(_YJ_PROGRAMMES)]
        if self.rng.random() < 0.3:
            second = self.pick(_YJ_PROGRAMMES)
            if second not in programmes:
                programmes.append(second)
        return tuple(self.order(programme) for programme in programmes)

    def youth_justice(self, child: Child, *, chosen: bool) -> YouthJusticeRecord | None:
        """The child's youth-justice record, if any; `chosen` (multi_service) always has one."""
        shielded = child.council is not None and child.council.shielded
        if chosen:
            orders: tuple[Involvement, ...] = (
                self.order("Referral order", consent=True, contact=True),)
        else:
            if age_on(child.date_of_birth, self.today) not in _YJ_AGES:
                return None
            if self.rng.random() >= (_YJ_SHIELDED_RATE if shielded else _YJ_RATE):
                return None
            orders = self.orders()
        self._yj_serial += 1
        return YouthJusticeRecord(f"YJ-{self._yj_serial:06d}", shielded, orders)


def generate_children(seed: int, size: int,
                      today: dt.date) -> tuple[list[Child], dict[str, str]]:
    """The children and the fixtures' NHS numbers, keyed by `FIXTURE_KEYS`.

    `size` children, the first seven being the built fixtures, plus one more
    at the end only when none of them can be `multi_service`.
    """
    if size < len(_BUILT_FIXTURES):
        raise ValueError(f"size must be at least {len(_BUILT_FIXTURES)}")
    builder = _Builder(random.Random(seed), today)
    children = [
        builder.fixture(key, builder.nhs_number(), family)
        for key, family in zip(_BUILT_FIXTURES, names.FIXTURE_SURNAMES, strict=True)
    ]
    children.extend(builder.child(builder.nhs_number()) for _ in range(size - len(children)))
    fixtures = {key: child.nhs_number
                for key, child in zip(_BUILT_FIXTURES, children, strict=False)}
    # Everything from here on comes from the second stream: see the module docstring.
    builder.rng = random.Random(f"{seed}:youth_justice")
    chosen = _multi_service_index(children, today)
    if chosen is None:
        taken = {(child.family.casefold(), child.date_of_birth) for child in children}
        children.append(builder.multi_service(taken))
        chosen = len(children) - 1
    fixtures[_MULTI_SERVICE] = children[chosen].nhs_number
    for index, child in enumerate(children):
        record = builder.youth_justice(child, chosen=index == chosen)
        if record is not None:
            children[index] = replace(child, youth_justice=record)
    fixtures.update(_protection(children, fixtures, random.Random(f"{seed}:protection"), today))
    return children, {key: fixtures[key] for key in FIXTURE_KEYS}


def _protection(children: list[Child], fixtures: dict[str, str], rng: random.Random,
                today: dt.date) -> dict[str, str]:
    """Draw the council's protection register (in place); the two fixtures it names.

    The other fixtures keep the properties they promise: none is drawn onto the register.
    """
    taken = set(fixtures.values())
    for index, child in enumerate(children):
        if (child.council is None or age_on(child.date_of_birth, today) >= _ADULT
                or child.nhs_number in taken):
            continue
        plan, looked_after = rng.random() < _PLAN_RATE, rng.random() < _LOOKED_AFTER_RATE
        elsewhere = rng.random() < _ELSEWHERE_RATE
        if plan or looked_after:
            authority = (_OTHER_AUTHORITIES[int(rng.random() * len(_OTHER_AUTHORITIES))]
                         if elsewhere else HOME_AUTHORITY)
            children[index] = replace(child, protection=ProtectionRecord(
                plan, looked_after, authority))
    chosen: dict[str, str] = {}
    for key, (plan, looked_after) in _PROTECTION_FIXTURES.items():
        index = _protection_index(children, taken, today)
        earlier = children[index].protection if children[index].nhs_number in chosen.values() \
            else None  # the ordinary child doubling as both fixtures: both flags
        children[index] = replace(children[index], protection=ProtectionRecord(
            plan or bool(earlier and earlier.child_protection_plan), looked_after,
            HOME_AUTHORITY))
        chosen[key] = children[index].nhs_number
        taken.add(chosen[key])
    return chosen


def _protection_index(children: Sequence[Child], taken: set[str], today: dt.date) -> int:
    """The first generated child fit to be a protection fixture (see the module docstring)."""
    keys = collections.Counter((c.family.casefold(), c.date_of_birth) for c in children)

    def usable(child: Child) -> bool:
        council = child.council
        return (child.nhs_number not in taken and council is not None
                and not council.shielded and age_on(child.date_of_birth, today) < _ADULT)

    def fits(child: Child) -> bool:
        council = child.council
        return (usable(child) and council is not None and child.practice is not None
                and child.school is not None and child.youth_justice is None
                and not any(item.sensitive for item in council.involvements)
                and keys[child.family.casefold(), child.date_of_birth] == 1)

    generated = range(len(_BUILT_FIXTURES), len(children))
    for test in (fits, usable):
        found = next((i for i in generated if test(children[i])), None)
        if found is not None:
            return found
    # Only the built fixtures (a population of seven): the ordinary child doubles as one.
    return FIXTURE_KEYS.index("ordinary")


def _multi_service_index(children: Sequence[Child], today: dt.date) -> int | None:
    """The first generated (not built) child who fits `multi_service`, if any."""
    keys = collections.Counter((c.family.casefold(), c.date_of_birth) for c in children)
    for index in range(len(_BUILT_FIXTURES), len(children)):
        child = children[index]
        council = child.council
        if (age_on(child.date_of_birth, today) == _MULTI_SERVICE_AGE
                and child.practice is not None and child.school is not None
                and council is not None and not council.shielded and council.involvements
                and not any(item.sensitive for item in council.involvements)
                and keys[child.family.casefold(), child.date_of_birth] == 1):
            return index
    return None
