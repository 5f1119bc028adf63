"""Request-rate limits (GCRA) per subject and per client, against a real Redis."""

from __future__ import annotations

import logging

import pytest

from gateway.core.errors import RateLimitedError
from gateway.limits.ratelimit import RateLimiter
from gateway.settings import BudgetSettings
from tests.limits.support import SECRET


def settings(subject_rpm=6, client_rpm=6_000, burst=3) -> BudgetSettings:
    """Defaults: a subject may send 3 at once, then one every 10 s."""
    return BudgetSettings(subject_requests_per_minute=subject_rpm,
                          client_requests_per_minute=client_rpm, burst=burst)


@pytest.fixture
def make(redis_client, prefix, clock):
    def build(limits=None, redis=redis_client) -> RateLimiter:
        return RateLimiter(limits or settings(), redis, prefix, SECRET, clock)
    return build


async def passes(limiter: RateLimiter, subject="alice", client="case-system") -> bool:
    try:
        await limiter.check(subject=subject, client_id=client)
    except RateLimitedError:
        return False
    return True


async def retry_after(limiter: RateLimiter, subject="alice", client="case-system") -> int:
    with pytest.raises(RateLimitedError) as refused:
        await limiter.check(subject=subject, client_id=client)
    assert refused.value.extensions["retryAfter"] == refused.value.retry_after
    assert refused.value.extensions["code"] == "RATE_LIMITED"
    assert refused.value.http_status == 429
    return refused.value.retry_after


async def test_a_burst_passes_then_the_next_request_waits_one_interval(make):
    limiter = make()
    assert [await passes(limiter) for _ in range(3)] == [True, True, True]
    assert await retry_after(limiter) == 10


async def test_time_restores_the_allowance_and_refusals_spend_nothing(make, clock):
    limiter = make()
    for _ in range(3):
        await passes(limiter)
    for _ in range(5):
        assert not await passes(limiter)       # hammering while refused ...
    clock.advance(4)
    assert await retry_after(limiter) == 6     # ... does not push the wait out
    clock.advance(6)
    assert await passes(limiter)
    assert not await passes(limiter)
    clock.advance(30)
    assert [await passes(limiter) for _ in range(4)] == [True, True, True, False]


async def test_retry_after_rounds_up_to_whole_seconds(make, clock):
    limiter = make(settings(subject_rpm=120, burst=2))   # one every 0.5 s
    await passes(limiter)
    await passes(limiter)
    assert await retry_after(limiter) == 1
    clock.advance(0.5)
    assert await passes(limiter)


async def test_subjects_are_limited_independently(make, clock):
    limiter = make()
    for _ in range(3):
        await passes(limiter, subject="alice")
    clock.advance(0.1)          # the client's own allowance (one per 10 ms) comes back
    assert not await passes(limiter, subject="alice")
    assert await passes(limiter, subject="bob")


async def test_a_client_is_limited_across_its_subjects(make):
    limiter = make(settings(subject_rpm=600, client_rpm=60, burst=4))
    for subject in ("a", "b", "c", "d"):
        assert await passes(limiter, subject=subject)
    assert await retry_after(limiter, subject="e") == 1
    assert await passes(limiter, subject="e", client="other-system")


async def test_a_client_refusal_spends_none_of_the_subjects_allowance(make):
    limiter = make(settings(subject_rpm=6, client_rpm=60, burst=3))
    for subject in ("x", "y", "z"):
        await passes(limiter, subject=subject)
    assert not await passes(limiter, subject="alice")   # the client is over, alice is not
    assert [await passes(limiter, subject="alice", client=c) for c in "pqrs"] == [
        True, True, True, False]


async def test_redis_holds_hashed_keys_that_expire(make, redis_client, prefix):
    # slow rates, so the keys live long enough (about 10 s) to be read back
    await passes(make(settings(subject_rpm=6, client_rpm=6, burst=3)),
                 subject="alice@example.org", client="case-system-7")
    keys = [key async for key in redis_client.scan_iter(match=f"{prefix}*")]
    assert len(keys) == 2
    for key in keys:
        assert b"alice" not in key
        assert b"case-system" not in key
        assert 0 < await redis_client.pttl(key) <= 10_000


async def test_two_limiters_on_one_redis_share_the_allowance(make):
    first, second = make(), make()
    assert [await passes(limiter) for limiter in (first, second, first)] == [True] * 3
    assert not await passes(second)


async def test_redis_down_falls_back_to_an_in_process_limit(make, dead_redis, clock, caplog):
    limiter = make(redis=dead_redis)
    with caplog.at_level(logging.WARNING, logger="gateway.limits.counters"):
        assert [await passes(limiter) for _ in range(4)] == [True, True, True, False]
    assert limiter.status == "degraded"
    assert len(caplog.records) == 1
    clock.advance(10)
    assert await passes(limiter)


async def test_without_redis_limits_hold_in_process(make):
    limiter = make(redis=None)
    assert limiter.status == "ok"
    assert [await passes(limiter) for _ in range(4)] == [True, True, True, False]
