"""The client's own round-trip counter, and the cache store's one-round-trip write-back."""

from __future__ import annotations

from prometheus_client import REGISTRY

from gateway.cache import RedisStore


def round_trips() -> float:
    return REGISTRY.get_sample_value("contactpoint_redis_round_trips_total") or 0.0


async def test_a_command_a_pipeline_and_a_script_are_one_round_trip_each(client, prefix):
    script = client.register_script("return redis.call('GET', KEYS[1])")
    await client.script_load(script.script)  # so that a call is one EVALSHA
    before = round_trips()
    await client.set(f"{prefix}a", b"1")
    assert round_trips() - before == 1
    async with client.pipeline(transaction=False) as pipe:
        for n in range(5):
            _ = pipe.set(f"{prefix}{n}", b"x")
        await pipe.execute()
    assert round_trips() - before == 2
    assert await script(keys=[f"{prefix}a"]) == b"1"
    assert round_trips() - before == 3


async def test_the_store_purges_and_writes_in_one_round_trip(client, prefix):
    store = RedisStore(client, retry_seconds=5.0)
    await client.set(f"{prefix}old", b"stale")
    before = round_trips()
    await store.write([f"{prefix}old"], [(f"{prefix}new", b"sealed", 30.0)])
    assert round_trips() - before == 1
    assert await client.get(f"{prefix}old") is None
    assert await client.get(f"{prefix}new") == b"sealed"
    assert 0 < await client.pttl(f"{prefix}new") <= 30_000
