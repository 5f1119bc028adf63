"""Helpers shared by the integration test modules: scopes, expected answers, raw requests.

Expected values are computed from the simulators' population records
(`connectors.simulators.records`), never from the gateway, so a test fails
when the gateway serves something other than what the systems hold.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from connectors.simulators import Population
from gateway.cache import CacheSealer
from gateway.core.nhs import check_digit

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx

    from connectors.simulators.records import Child, Involvement, Place, System

IDENTITY = "child.identity.read"
CONTACT = "child.contact.read"
EDUCATION = "child.education.read"
HEALTH = "child.health.read"
SERVICES = "child.services.read"
SENSITIVE = "child.sensitive.read"
SHIELDED = "child.shielded.read"
CHILD_SCOPES = (IDENTITY, CONTACT, EDUCATION, HEALTH, SERVICES)
SPECIAL_SCOPES = (SENSITIVE, SHIELDED)
ALL_BUT_SHIELDED = " ".join((*CHILD_SCOPES, SENSITIVE))
SYSTEMS: tuple[System, ...] = ("gp", "school", "council", "youth_justice")
KINDS = SYSTEMS

# Nullable `Child` fields: selection and the scope that releases each.
FIELDS: dict[str, tuple[str, str]] = {
    "nhsNumber": ("nhsNumber", IDENTITY),
    "name": ("name { given family }", IDENTITY),
    "dateOfBirth": ("dateOfBirth", IDENTITY),
    "gender": ("gender", IDENTITY),
    "address": ("address { lines postcode }", CONTACT),
    "carers": ("carers { name { given family } relationship phone address { lines postcode } }",
               CONTACT),
    "education": ("education { school { name code phone address { lines postcode } } }",
                  EDUCATION),
    "primaryCare": ("primaryCare { practice { name code phone address { lines postcode } } }",
                    HEALTH),
    "services": ("services { kind name sensitive contact }", SERVICES),
}
NULLABLE_SELECTION = " ".join(selection for selection, _ in FIELDS.values())
CHILD_BY_ID = ("query($id: ID!) { child(id: $id, purpose: SAFEGUARDING, caseReference: \"C-1\")"
               " { nhsNumber } }")


def record(gateway: Any, fixture: str) -> Child:
    """The population's record of a fixture child (or of an NHS number)."""
    child = gateway.sims.population.child(gateway.fixtures.get(fixture, fixture))
    assert child is not None
    return child


def place_json(place: Place) -> dict[str, Any]:
    return {"lines": [*place.lines, place.town], "postcode": place.postcode}


def _org_json(code: str, name: str, phone: str, address: Place) -> dict[str, Any]:
    return {"name": name, "code": code, "phone": phone, "address": place_json(address)}


def service_json(item: Involvement) -> dict[str, Any]:
    return {"kind": item.kind, "name": item.name, "sensitive": item.sensitive,
            "contact": item.contact}


def visible_services(child: Child, *, sensitive_scope: bool) -> list[dict[str, Any]] | None:
    """The services a caller sees: non-sensitive, plus consented sensitive ones with the scope."""
    if child.council is None:
        return None
    return [service_json(s) for s in child.council.involvements
            if not s.sensitive or (sensitive_scope and s.consent_recorded)]


def expected_child(child: Child, *, sensitive_scope: bool = True) -> dict[str, Any]:
    """The nullable fields of `child` as served to a caller holding every scope it needs."""
    school, practice, council = child.school, child.practice, child.council
    return {
        "nhsNumber": child.nhs_number,
        "name": {"given": list(child.given), "family": child.family},
        "dateOfBirth": child.date_of_birth.isoformat(),
        "gender": child.gender if practice or school else None,
        "address": place_json(child.home) if practice or council else None,
        "carers": None if school is None else [
            {"name": {"given": [c.given], "family": c.family}, "relationship": c.relationship,
             "phone": c.phone, "address": place_json(c.address)} for c in child.carers],
        "education": None if school is None else {
            "school": _org_json(school.urn, school.name, school.phone, school.address)},
        "primaryCare": None if practice is None else {
            "practice": _org_json(practice.code, practice.name, practice.phone,
                                  practice.address)},
        "services": visible_services(child, sensitive_scope=sensitive_scope),
    }


def fields_of(child: dict[str, Any]) -> dict[str, Any]:
    """A served child without `id`, `shielded` and `sources`, to compare with `expected_child`."""
    return {k: v for k, v in child.items() if k not in {"id", "shielded", "sources"}}


def sources_of(child: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    return {s["connector"]: (s["status"], s["fromCache"]) for s in child["sources"]}


def strings(value: Any) -> Iterator[str]:
    """Every string leaf of a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def personal_strings(child: Child) -> set[str]:
    """Every personal value any system holds about `child`, as text (including the DOB)."""
    places = [child.home, *(c.address for c in child.carers),
              *(org.address for org in (child.school, child.practice) if org is not None)]
    values = {child.nhs_number, child.date_of_birth.isoformat(), child.family, *child.given,
              *(c.given for c in child.carers), *(c.family for c in child.carers),
              *(c.phone for c in child.carers)}
    for place in places:
        values |= {*place.lines, place.postcode, "".join(place.postcode.split())}
    values |= set(strings(expected_child(child)))
    if child.council is not None:
        values |= set(strings([service_json(s) for s in child.council.involvements]))
    return {v for v in values if len(v) >= 3}


def fresh_nhs_numbers(population: Population, count: int, start: int = 999_000_001
                      ) -> list[str]:
    """`count` valid test-range NHS numbers that no child in `population` has."""
    found: list[str] = []
    first_nine = start
    while len(found) < count:
        digit = check_digit(str(first_nine))
        number = f"{first_nine}{digit}"
        if digit is not None and population.child(number) is None:
            found.append(number)
        first_nine += 1
    return found


def unknown_nhs(population: Population) -> str:
    return fresh_nhs_numbers(population, 1)[0]


def total_hits(gateway: Any) -> dict[str, int]:
    return {name: sum(getattr(gateway.sims, name).hits.values()) for name in SYSTEMS}


async def post(gateway: Any, query: str, variables: dict[str, Any], *, scopes: str,
               client_id: str | None = None) -> httpx.Response:
    """The raw HTTP response, for byte-for-byte comparisons."""
    token = gateway.token(scopes, client_id=client_id)
    response: httpx.Response = await gateway.post({"query": query, "variables": variables},
                                                  token=token)
    assert response.status_code == 200, response.text
    return response


def sealer(gateway: Any) -> CacheSealer:
    """A sealer with the gateway's own secret and prefix, to name a child's cache keys."""
    cache = gateway.settings.cache
    return CacheSealer(cache.secret.get_secret_value(), cache.key_prefix)


async def cache_keys(redis_client: Any, gateway: Any) -> list[bytes]:
    """The cache entries (budget and rate-limit counters share the prefix: see `all_keys`).

    Read once the gateway's posted cache writes have landed, so an absence means one.
    """
    await gateway.runtime.store.settle()
    return sorted(await redis_client.keys(gateway.settings.cache.key_prefix + "s:*"))


async def all_keys(redis_client: Any, gateway: Any) -> list[bytes]:
    await gateway.runtime.store.settle()
    return sorted(await redis_client.keys(gateway.settings.cache.key_prefix + "*"))


def connectors_config(sims: Any, **overrides: dict[str, Any]) -> list[dict[str, Any]]:
    """The harness's connector list, with per-system overrides (e.g. a cache TTL)."""
    urls = sims.urls()
    return [{"name": n, "manifest": n, "base_url": urls[n], "timeout_seconds": 1.0,
             **overrides.get(n, {})} for n in KINDS]


class ShieldablePopulation(Population):
    """The seeded population, where a test can make the council start shielding a child."""

    def __init__(self, base: Population) -> None:
        super().__init__(base.children, base.today, base.fixtures())
        self.now_shielded: set[str] = set()

    def lookup(self, system: System, nhs_number: str) -> Child | None:
        child = super().lookup(system, nhs_number)
        if child is None or child.council is None or nhs_number not in self.now_shielded:
            return child
        return dataclasses.replace(child, council=dataclasses.replace(child.council,
                                                                      shielded=True))


def twins(population: Population, template: Child, count: int) -> Population:
    """A population of `count` children sharing `template`'s name and date of birth."""
    children = [dataclasses.replace(template, nhs_number=nhs)
                for nhs in fresh_nhs_numbers(population, count)]
    return Population(children, population.today, {})


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
