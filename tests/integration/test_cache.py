"""The short-lived cache in real Redis: hits, one fetch per request, nothing readable, TTLs,
never a shielded child, tamper-evident, and policy applied after it.

README "Shielding" (never cached; purged on learning), DESIGN §1 (encrypted,
hashed keys, expires in seconds) and §3 (policy decides after the cache).
"""

from __future__ import annotations

import json
import re

import pytest

from connectors.simulators import run_simulators
from tests.integration.harness import ALL_SCOPES, CHILD_QUERY, running_gateway
from tests.integration.support import (
    ALL_BUT_SHIELDED,
    IDENTITY,
    SERVICES,
    SYSTEMS,
    ShieldablePopulation,
    all_keys,
    cache_keys,
    connectors_config,
    expected_child,
    fields_of,
    personal_strings,
    record,
    sealer,
    sources_of,
    total_hits,
)

CACHED = ("ordinary", "sensitive_consented", "sensitive_unconsented", "adult_consented",
          "adult_no_consent", "school_only")


def _readable(value: bytes) -> bool:
    """True if `value` parses as JSON (plain UTF-8 facts would)."""
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


async def test_second_identical_query_is_served_from_cache(gateway):
    first = await gateway.child("ordinary")
    assert sources_of(first["data"]["child"]) == dict.fromkeys(SYSTEMS, ("ok", False))
    before = total_hits(gateway)
    second = await gateway.child("ordinary")
    assert total_hits(gateway) == before
    assert sources_of(second["data"]["child"]) == dict.fromkeys(SYSTEMS, ("ok", True))
    assert fields_of(second["data"]["child"]) == fields_of(first["data"]["child"])
    assert fields_of(second["data"]["child"]) == expected_child(record(gateway, "ordinary"))


async def test_aliases_for_one_child_fetch_each_system_once(gateway):
    query = ("query($id: ID!) {"
             " a: child(id: $id, purpose: SAFEGUARDING) { name { family } primaryCare"
             " { practice { name } } }"
             " b: child(id: $id, purpose: EDUCATION) { education { school { name } } services"
             " { name } }"
             " c: child(id: $id, purpose: SAFEGUARDING) { sources { fromCache } } }")
    body = await gateway.gql(query, {"id": gateway.id_for(gateway.fixtures["ordinary"])})
    assert "errors" not in body, body
    assert set(body["data"]) == {"a", "b", "c"}
    assert total_hits(gateway) == dict.fromkeys(SYSTEMS, 1)


async def test_redis_holds_nothing_readable(gateway, redis_client):
    for fixture in CACHED:
        await gateway.child(fixture)
    keys = await cache_keys(redis_client, gateway)
    assert len(keys) >= 3 * 4, "the answers were cached"
    pattern = re.compile(re.escape(gateway.settings.cache.key_prefix) + r"s:[0-9a-f]{64}")
    secrets = set().union(*(personal_strings(record(gateway, f)) for f in CACHED))
    for key in keys:
        assert pattern.fullmatch(key.decode()), key
        value = await redis_client.get(key)
        assert value is not None
        for secret in secrets:
            quoted = json.dumps(secret, ensure_ascii=False).encode()
            assert quoted not in value
            if len(secret) >= 5:
                assert secret.encode() not in value
                assert secret.encode() not in key
        assert not _readable(value)
    for key in await all_keys(redis_client, gateway):  # budgets, baselines, rate limits too
        kind = await redis_client.type(key)
        values = (await redis_client.smembers(key) if kind == b"set"
                  else await redis_client.hvals(key) if kind == b"hash"
                  else [await redis_client.get(key) or b""])
        raw = key + b"".join(values)
        assert not any(s.encode() in raw for s in secrets if len(s) >= 5), key


async def test_cache_entries_expire_within_thirty_seconds(gateway, redis_client):
    await gateway.child("ordinary")
    await gateway.child("sensitive_consented")
    keys = await cache_keys(redis_client, gateway)
    assert len(keys) == 2 * len(SYSTEMS)
    for key in keys:
        ttl = await redis_client.pttl(key)
        assert 0 < ttl <= 30_000, (key, ttl)


@pytest.mark.parametrize("scopes", [ALL_SCOPES, ALL_BUT_SHIELDED])
async def test_a_shielded_childs_answers_are_never_cached(gateway, redis_client, scopes):
    for _ in range(2):
        body = await gateway.child("shielded", scopes=scopes)
        assert sources_of(body["data"]["child"]) == dict.fromkeys(SYSTEMS, ("ok", False))
    assert await cache_keys(redis_client, gateway) == []


async def test_no_answer_is_cached_while_the_council_is_silent(gateway, redis_client):
    gateway.sims.council.knobs.down = True
    body = await gateway.child("shielded")
    assert body["data"]["child"]["shielded"] is True
    assert await cache_keys(redis_client, gateway) == []


async def test_an_adult_without_retention_consent_is_never_cached(gateway, redis_client):
    body = await gateway.child("adult_no_consent")
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert await cache_keys(redis_client, gateway) == []


async def test_learning_a_child_is_shielded_purges_its_entries(population, jwks, signing_key,
                                                               redis_client):
    shieldable = ShieldablePopulation(population)
    nhs = shieldable.fixtures()["ordinary"]
    async with run_simulators(shieldable, shutdown_timeout=0.2) as sims:
        # The council is asked every time (ttl 0), so its news reaches a warm cache.
        config = connectors_config(sims, council={"cache_ttl_seconds": 0})
        async with running_gateway(sims, jwks, signing_key, connectors=config) as gateway:
            await gateway.child("ordinary")
            keys = await cache_keys(redis_client, gateway)
            # (the ordinary child is unknown to youth justice: "not known" is cached too)
            assert set(keys) == {sealer(gateway).key(n, nhs).encode()
                                 for n in ("gp", "school", "youth_justice")}
            shieldable.now_shielded.add(nhs)
            body = await gateway.child("ordinary", scopes=ALL_BUT_SHIELDED)
            served = body["data"]["child"]
            assert sources_of(served) == {"gp": ("ok", True), "school": ("ok", True),
                                          "council": ("ok", False), "youth_justice": ("ok", True)}
            assert served["shielded"] is True
            assert body["data"]["child"]["address"] is None
            assert await cache_keys(redis_client, gateway) == []


async def _swap(redis_client, first: str, second: str) -> None:
    a, b = await redis_client.get(first), await redis_client.get(second)
    assert a is not None
    assert b is not None
    await redis_client.set(first, b, px=30_000)
    await redis_client.set(second, a, px=30_000)


@pytest.mark.parametrize("swap", ["between-children", "between-systems"])
async def test_a_value_moved_to_another_key_is_not_served(gateway, redis_client, swap):
    one, two = gateway.fixtures["ordinary"], gateway.fixtures["sensitive_consented"]
    await gateway.child(one)
    await gateway.child(two)
    keys = sealer(gateway)
    if swap == "between-children":
        for name in SYSTEMS:
            await _swap(redis_client, keys.key(name, one), keys.key(name, two))
        tampered = {one: SYSTEMS, two: SYSTEMS}
    else:
        await _swap(redis_client, keys.key("gp", one), keys.key("council", one))
        tampered = {one: ("gp", "council"), two: ()}
    for nhs, systems in tampered.items():
        before = total_hits(gateway)
        body = await gateway.child(nhs)
        assert "errors" not in body, body
        served = body["data"]["child"]
        assert fields_of(served) == expected_child(record(gateway, nhs))
        assert sources_of(served) == {n: ("ok", n not in systems) for n in SYSTEMS}
        after = total_hits(gateway)
        assert {n: after[n] - before[n] for n in SYSTEMS} == {
            n: int(n in systems) for n in SYSTEMS}


async def test_tampered_ciphertext_is_not_served(gateway, redis_client):
    nhs = gateway.fixtures["ordinary"]
    await gateway.child(nhs)
    key = sealer(gateway).key("council", nhs)
    value = bytearray(await redis_client.get(key))
    value[-1] ^= 1
    await redis_client.set(key, bytes(value), px=30_000)
    body = await gateway.child(nhs)
    assert sources_of(body["data"]["child"])["council"] == ("ok", False)
    assert fields_of(body["data"]["child"]) == expected_child(record(gateway, nhs))


@pytest.mark.parametrize(("fixture", "scopes"), [
    ("ordinary", f"{IDENTITY} {SERVICES}"),
    ("sensitive_consented", f"{IDENTITY} {SERVICES}"),
])
async def test_policy_applies_to_cached_answers(gateway, fixture, scopes):
    child = record(gateway, fixture)
    warm = await gateway.child(fixture, scopes=ALL_SCOPES)
    assert "errors" not in warm, warm
    before = total_hits(gateway)
    body = await gateway.gql(CHILD_QUERY, {"id": gateway.id_for(child.nhs_number),
                                           "purpose": "SAFEGUARDING", "case": None},
                             scopes=scopes)
    assert total_hits(gateway) == before
    served = body["data"]["child"]
    assert sources_of(served) == dict.fromkeys(SYSTEMS, ("ok", True))
    withheld = ("address", "carers", "education", "primaryCare")
    assert {".".join(map(str, e["path"])): e["extensions"] for e in body["errors"]} == {
        "child.address": {"code": "FORBIDDEN", "scope": "child.contact.read"},
        "child.carers": {"code": "FORBIDDEN", "scope": "child.contact.read"},
        "child.education": {"code": "FORBIDDEN", "scope": "child.education.read"},
        "child.primaryCare": {"code": "FORBIDDEN", "scope": "child.health.read"},
    }
    assert all(served[name] is None for name in withheld)
    assert served["services"] == expected_child(child, sensitive_scope=False)["services"]
    assert not any(s["sensitive"] for s in served["services"])
