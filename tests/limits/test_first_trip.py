"""The fused first round trip: the budget and GCRA scripts' rules, in order, on real Redis."""

from __future__ import annotations

import pytest

from gateway.limits.budgets import Budgets, PendingCharge
from gateway.limits.counters import REDIS_FAILURES
from gateway.limits.first_trip import FirstTrip, OnceKey
from gateway.limits.ratelimit import RateLimiter
from gateway.settings import BudgetLimits, BudgetSettings
from tests.limits.support import SECRET

SUBJECT, ORG = "alice.smith@school.example", "URN-100234"


def settings(hour: int = 3, burst: int = 2) -> BudgetSettings:
    return BudgetSettings(default=BudgetLimits(subject_per_hour=hour, subject_per_day=50,
                                               organisation_per_hour=100,
                                               organisation_per_day=2_000),
                          subject_requests_per_minute=60, burst=burst)


def pending(budgets: Budgets, child: str, organisation: str | None = ORG) -> PendingCharge:
    return budgets.prepare(subject=SUBJECT, organisation=organisation, roles=frozenset(),
                           child=child, request_id="req-1")


def parts(redis_client, prefix, sink, clock, **kwargs):
    budgets = Budgets(settings(**kwargs), redis_client, prefix, SECRET, sink, clock)
    limiter = RateLimiter(settings(**kwargs), redis_client, prefix, SECRET, clock)
    return budgets, limiter, FirstTrip(redis_client)


async def test_charges_match_the_budget_script_and_the_read_follows(redis_client, prefix, sink,
                                                                    clock):
    budgets, limiter, trip = parts(redis_client, prefix, sink, clock)
    await redis_client.set(f"{prefix}x", b"sealed")
    rate = limiter.plan(subject=SUBJECT, client_id="c")
    charges = [pending(budgets, "child-1"), pending(budgets, "child-2", organisation=None)]

    reply = await trip(OnceKey(f"{prefix}once", 10), rate, charges, [f"{prefix}x", f"{prefix}y"])

    assert (reply.first_use, reply.wait_ms) == (True, 0)
    assert [o.accepted for o in reply.outcomes] == [True, True]
    assert reply.outcomes[0].used == (1, 1, 1, 1)
    assert reply.outcomes[1].used == (2, 2)  # subject windows only: the same subject's sets
    assert reply.values == (b"sealed", None)
    # The standalone script sees the same sets: a repeat is free, a third child counts.
    again = await budgets.count(pending(budgets, "child-1"))
    assert again.accepted
    assert again.added == (False, False, False, False)


async def test_a_replay_moves_nothing_after_it(redis_client, prefix, sink, clock):
    budgets, limiter, trip = parts(redis_client, prefix, sink, clock, burst=1)
    once = OnceKey(f"{prefix}once", 10)
    await redis_client.set(once.key, 1)
    rate = limiter.plan(subject=SUBJECT, client_id="c")

    reply = await trip(once, rate, [pending(budgets, "child-1")], [f"{prefix}x"])

    assert reply.first_use is False
    assert (reply.wait_ms, reply.outcomes, reply.values) == (None, (), None)
    assert [k async for k in redis_client.scan_iter(match=f"{prefix}[br]:*")] == []


async def test_a_rate_limited_request_charges_nothing(redis_client, prefix, sink, clock):
    budgets, limiter, trip = parts(redis_client, prefix, sink, clock, burst=1)
    first = await trip(None, limiter.plan(subject=SUBJECT, client_id="c"), [], [])
    assert first.wait_ms == 0

    reply = await trip(None, limiter.plan(subject=SUBJECT, client_id="c"),
                       [pending(budgets, "child-1")], [f"{prefix}x"])

    assert reply.wait_ms is not None
    assert reply.wait_ms > 0
    assert (reply.outcomes, reply.values) == ((), None)
    assert [k async for k in redis_client.scan_iter(match=f"{prefix}b:*")] == []


async def test_a_refused_charge_stops_the_rest_and_the_read(redis_client, prefix, sink, clock):
    budgets, _, trip = parts(redis_client, prefix, sink, clock, hour=1)
    charges = [pending(budgets, "child-1"), pending(budgets, "child-2"),
               pending(budgets, "child-3")]

    reply = await trip(None, None, charges, [f"{prefix}x"])

    assert [o.accepted for o in reply.outcomes] == [True, False]
    assert reply.values is None
    assert reply.outcomes[1].exceeded[0]  # the window's first refusal: it alerts once


async def test_a_redis_without_the_script_is_sent_it_once(redis_client, prefix, sink, clock):
    budgets, limiter, trip = parts(redis_client, prefix, sink, clock)
    await redis_client.script_flush()  # as after a Redis restart: no script is known

    reply = await trip(None, limiter.plan(subject=SUBJECT, client_id="c"),
                       [pending(budgets, "child-1")], [f"{prefix}x"])

    assert (reply.wait_ms, [o.accepted for o in reply.outcomes]) == (0, [True])
    assert reply.values == (None,)


async def test_the_same_owner_in_another_second_gets_fresh_windows(redis_client, prefix, sink,
                                                                   clock):
    budgets, _, trip = parts(redis_client, prefix, sink, clock)
    first = pending(budgets, "child-1")
    clock.advance(3_600)  # the next hour's bucket: its own keys, TTLs and baseline hour
    later = pending(budgets, "child-1")

    assert later.keys[0] != first.keys[0]
    assert later.keys[6] != first.keys[6]
    # The day's buckets and the organisation's baseline are the same keys.
    assert (later.keys[3:6], later.keys[9:]) == (first.keys[3:6], first.keys[9:])
    reply = await trip(None, None, [first, later], [])
    assert [o.added for o in reply.outcomes] == [(True,) * 4, (True, False, True, False)]


async def test_a_dead_redis_raises_what_the_client_raises(dead_redis, prefix, sink, clock):
    budgets, limiter, trip = parts(dead_redis, prefix, sink, clock)

    with pytest.raises(REDIS_FAILURES):
        await trip(OnceKey(f"{prefix}once", 10), limiter.plan(subject=SUBJECT, client_id="c"),
                   [pending(budgets, "child-1")], [f"{prefix}x"])
