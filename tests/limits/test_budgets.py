"""Harvesting budgets against a real Redis: distinct children per subject and organisation."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gateway.core.errors import AccessBudgetExceededError
from gateway.crypto.pseudonyms import Pseudonymiser
from gateway.limits.budgets import Budgets, limits_for, warning_threshold
from gateway.settings import BudgetLimits, BudgetSettings
from tests.limits.support import SECRET, RedisForwarder, free_port

SUBJECT = "alice.smith@school.example"
ORG = "URN-100234"
NO_ROLES: frozenset[str] = frozenset()


def settings(hour=20, day=50, org=2_000, org_hour=100, **roles: BudgetLimits) -> BudgetSettings:
    return BudgetSettings(default=BudgetLimits(subject_per_hour=hour, subject_per_day=day,
                                               organisation_per_hour=org_hour,
                                               organisation_per_day=org), roles=roles)


@pytest.fixture
def make(redis_client, prefix, sink, clock):
    def build(budget_settings=None, redis=redis_client, **kwargs) -> Budgets:
        return Budgets(budget_settings or settings(), redis, prefix, SECRET, sink, clock,
                       **kwargs)
    return build


async def charge(budgets: Budgets, child: str, subject: str = SUBJECT, org: str | None = ORG,
                 roles: frozenset[str] = NO_ROLES):
    return await budgets.charge(subject=subject, organisation=org, roles=roles, child=child,
                                request_id="req-1")


async def charge_many(budgets: Budgets, children, **kwargs) -> None:
    for child in children:
        await charge(budgets, child, **kwargs)


async def test_children_are_counted_once_and_repeats_are_free(make):
    budgets = make()
    first = await charge(budgets, "c1")
    again = await charge(budgets, "c1")
    other = await charge(budgets, "c2")
    assert first.counted
    assert first.usage == {"subject_hour": (1, 20), "subject_day": (1, 50),
                           "organisation_hour": (1, 100), "organisation_day": (1, 2_000)}
    assert not again.counted
    assert again.usage == first.usage
    assert other.counted
    assert other.usage["subject_hour"] == (2, 20)


async def test_without_an_organisation_only_subject_windows_count(make):
    charged = await charge(make(), "c1", org=None)
    assert charged.usage == {"subject_hour": (1, 20), "subject_day": (1, 50)}


async def test_hourly_budget_refuses_the_next_new_child_until_the_next_hour(make, clock):
    budgets = make(settings(hour=3, day=10))
    await charge_many(budgets, ["c1", "c2", "c3"])
    with pytest.raises(AccessBudgetExceededError) as refused:
        await charge(budgets, "c4")
    error = refused.value
    assert error.http_status == 429
    assert error.extensions["code"] == "ACCESS_BUDGET_EXCEEDED"
    assert error.extensions["budget"] == "subject_hour"
    assert "per subject per hour" in error.message
    assert "c4" not in error.message
    assert 0 < error.extensions["retryAfter"] <= 3_600
    assert not (await charge(budgets, "c2")).counted   # already counted: still free
    clock.next_hour()
    assert (await charge(budgets, "c4")).usage["subject_hour"] == (1, 3)


async def test_daily_budget_holds_across_hours_until_the_next_utc_day(make, clock):
    budgets = make(settings(hour=5, day=7))
    await charge_many(budgets, [f"c{i}" for i in range(5)])
    clock.next_hour()
    await charge_many(budgets, ["c5", "c6"])
    with pytest.raises(AccessBudgetExceededError) as refused:
        await charge(budgets, "c7")
    assert refused.value.extensions["budget"] == "subject_day"
    assert "per subject per day" in refused.value.message
    # Looking up an earlier hour's child again costs a place in this hour only.
    assert (await charge(budgets, "c0")).usage["subject_hour"] == (3, 5)
    clock.next_day()
    assert (await charge(budgets, "c7")).usage["subject_day"] == (1, 7)


async def test_organisation_budget_is_shared_by_its_subjects(make):
    budgets = make(settings(org=3))
    await charge_many(budgets, ["c1", "c2"], subject="alice")
    await charge(budgets, "c3", subject="bob")
    assert (await charge(budgets, "c1", subject="bob")).usage["organisation_day"] == (3, 3)
    with pytest.raises(AccessBudgetExceededError) as refused:
        await charge(budgets, "c4", subject="carol")
    assert refused.value.extensions["budget"] == "organisation_day"
    other_org = await charge(budgets, "c4", subject="carol", org="URN-999")
    assert other_org.usage["organisation_day"] == (1, 3)


async def test_a_refusal_counts_nothing_in_any_window(make):
    budgets = make(settings(hour=5, day=50, org=2))
    await charge(budgets, "c1", subject="alice")
    await charge(budgets, "c2", subject="bob")
    with pytest.raises(AccessBudgetExceededError):
        await charge(budgets, "c3", subject="bob")   # organisation full, bob's hour is not
    usage = (await charge(budgets, "c2", subject="bob")).usage
    assert usage == {"subject_hour": (1, 5), "subject_day": (1, 50),
                     "organisation_hour": (2, 100), "organisation_day": (2, 2)}


@pytest.mark.parametrize(("roles", "expected"), [
    (set(), (20, 50, 2_000)),
    ({"unknown"}, (20, 50, 2_000)),
    ({"lead"}, (100, 300, 5_000)),
    ({"trainee"}, (5, 10, 2_000)),
    ({"trainee", "unknown"}, (5, 10, 2_000)),
    ({"trainee", "analyst"}, (30, 40, 9_000)),
    ({"lead", "analyst", "trainee"}, (100, 300, 9_000)),
])
def test_the_most_generous_configured_role_wins_window_by_window(roles, expected):
    configured = settings(
        lead=BudgetLimits(subject_per_hour=100, subject_per_day=300, organisation_per_day=5_000),
        trainee=BudgetLimits(subject_per_hour=5, subject_per_day=10),
        analyst=BudgetLimits(subject_per_hour=30, subject_per_day=40,
                             organisation_per_day=9_000))
    limits = limits_for(configured, frozenset(roles))
    assert (limits.subject_per_hour, limits.subject_per_day,
            limits.organisation_per_day) == expected


@pytest.mark.parametrize(("limit", "ratio", "expected"), [
    (20, 0.8, 16), (50, 0.8, 40), (2_000, 0.8, 1_600), (3, 0.8, 3), (7, 0.8, 6),
    (10, 0.7, 7), (1, 0.5, 1),
])
def test_warning_threshold_is_the_ratio_rounded_up(limit, ratio, expected):
    assert warning_threshold(limit, ratio) == expected


async def test_role_limits_apply_to_charges(make):
    budgets = make(settings(hour=2, lead=BudgetLimits(subject_per_hour=4)))
    lead = frozenset({"lead", "unknown"})
    await charge_many(budgets, ["c1", "c2", "c3", "c4"], subject="lead", roles=lead)
    with pytest.raises(AccessBudgetExceededError):
        await charge(budgets, "c5", subject="lead", roles=lead)
    await charge_many(budgets, ["c1", "c2"], roles=frozenset({"unknown"}))
    with pytest.raises(AccessBudgetExceededError):
        await charge(budgets, "c3", roles=frozenset({"unknown"}))


async def test_warning_at_the_ratio_once_per_window_period_and_alert_on_refusal(make, sink,
                                                                                clock):
    budgets = make(settings(hour=10, day=20, org=1_000))
    await charge_many(budgets, [f"a{i}" for i in range(7)])
    assert sink.alerts == []
    await charge(budgets, "a7")                          # 8 of 10: 80 %
    assert sink.kinds() == [("budget_warning", "subject_hour")]
    await charge_many(budgets, ["a8", "a9", "a0", "a7"])
    assert len(sink.alerts) == 1
    with pytest.raises(AccessBudgetExceededError):
        await charge(budgets, "a10")
    assert sink.kinds()[1:] == [("budget_exceeded", "subject_hour")]
    refusal = sink.alerts[1]
    assert refusal.detail == {"budget": "subject_hour", "used": 10, "limit": 10,
                              "full": "subject_hour"}
    assert refusal.child == "a10"
    assert refusal.subject == Pseudonymiser(SECRET)(SUBJECT)
    assert refusal.organisation == ORG
    assert refusal.request_id == "req-1"
    sink.alerts.clear()
    clock.next_hour()
    await charge_many(budgets, [f"b{i}" for i in range(1, 7)])  # 16 of 20 today: 80 %
    assert sink.kinds() == [("budget_warning", "subject_day")]
    await charge_many(budgets, ["b7", "b8"])                    # 8 of 10 this hour
    assert sink.kinds() == [("budget_warning", "subject_day"),
                            ("budget_warning", "subject_hour")]
    await charge_many(budgets, ["b9", "b10"])
    with pytest.raises(AccessBudgetExceededError) as refused:
        await charge(budgets, "b11")
    assert refused.value.extensions["budget"] == "subject_hour"
    assert sink.alerts[-1].detail["full"] == "subject_hour,subject_day"


async def test_concurrent_charges_warn_once(make, sink):
    budgets = make(settings(hour=10))
    results = await asyncio.gather(*(charge(budgets, f"c{i}") for i in range(15)),
                                   return_exceptions=True)
    assert sum(not isinstance(r, Exception) for r in results) == 10
    assert sorted(sink.kinds()) == [("budget_exceeded", "subject_hour"),
                                    ("budget_warning", "subject_hour")]


@pytest.mark.parametrize("redis_alive", [True, False], ids=["redis", "redis-down"])
async def test_budget_exceeded_alerts_once_per_window_not_per_refusal(make, dead_redis, sink,
                                                                      clock, redis_alive):
    budgets = make(settings(hour=3, day=50), **({} if redis_alive else {"redis": dead_redis}))
    await charge_many(budgets, ["c1", "c2", "c3"])
    for n in range(10):
        with pytest.raises(AccessBudgetExceededError):   # every refusal is still a 429
            await charge(budgets, f"over-{n}")
    assert [k for k in sink.kinds() if k[0] == "budget_exceeded"] == [
        ("budget_exceeded", "subject_hour")]
    clock.next_hour()
    await charge_many(budgets, ["d1", "d2", "d3"])
    for n in range(10):
        with pytest.raises(AccessBudgetExceededError):
            await charge(budgets, f"more-{n}")
    assert [k for k in sink.kinds() if k[0] == "budget_exceeded"] == [
        ("budget_exceeded", "subject_hour")] * 2


async def test_each_subject_and_the_organisation_alert_their_own_refusal(make, sink):
    budgets = make(settings(hour=2, org_hour=3))
    await charge_many(budgets, ["a1", "a2"], subject="a@org.example")
    for n in range(3):
        with pytest.raises(AccessBudgetExceededError):
            await charge(budgets, f"a-over-{n}", subject="a@org.example")
    await charge(budgets, "b1", subject="b@org.example")          # the organisation's third
    for n in range(3):
        with pytest.raises(AccessBudgetExceededError):
            await charge(budgets, f"b-over-{n}", subject="b@org.example")
    exceeded = [(a.kind, a.detail["budget"], a.subject) for a in sink.alerts
                if a.kind == "budget_exceeded"]
    assert exceeded == [("budget_exceeded", "subject_hour", Pseudonymiser(SECRET)("a@org.example")),
                        ("budget_exceeded", "organisation_hour",
                         Pseudonymiser(SECRET)("b@org.example"))]


async def test_redis_holds_no_subject_organisation_or_child_in_clear(make, redis_client,
                                                                     prefix):
    budgets = make(settings(hour=2))
    secrets = [SUBJECT, ORG, "child-pseudonym-1", "child-pseudonym-2"]
    await charge(budgets, "child-pseudonym-1")
    await charge(budgets, "child-pseudonym-2")            # reaches 80 %: a warned flag
    keys = [key async for key in redis_client.scan_iter(match=f"{prefix}*")]
    # hour, day, organisation hour and day sets + the hour's flag + the organisation's baseline
    assert len(keys) == 6
    stored = b" ".join(keys)
    for key in keys:
        ttl = await redis_client.ttl(key)
        kind = await redis_client.type(key)
        assert 0 < ttl <= (168 * 3600 * 2 if kind == b"hash" else 86_400 + 300)
        if kind == b"set":
            stored += b" " + b" ".join(await redis_client.smembers(key))
        elif kind == b"hash":
            stored += b" " + b" ".join(await redis_client.hvals(key))
        else:
            stored += b" " + await redis_client.get(key)
    for value in secrets:
        assert value.encode() not in stored
        assert Pseudonymiser(SECRET)(value).encode() not in stored


async def test_keys_expire_shortly_after_their_bucket(make, redis_client, prefix, clock):
    await charge(make(), "c1")
    ttls = sorted([await redis_client.ttl(key)
                   async for key in redis_client.scan_iter(match=f"{prefix}*")])
    # 10:15 UTC: the hour ends in 45 minutes, the day in 13 h 45; both plus grace.
    # The organisation's baseline outlives them: twice the hours it averages over.
    expected = [45 * 60 + 300] * 2 + [13 * 3600 + 45 * 60 + 300] * 2 + [168 * 3600 * 2]
    assert all(0 <= want - got <= 1 for got, want in zip(ttls, expected, strict=True))


async def test_redis_down_counts_in_process_and_still_enforces(make, dead_redis, sink, caplog):
    budgets = make(settings(hour=3), redis=dead_redis)
    with caplog.at_level(logging.WARNING, logger="gateway.limits.counters"):
        await charge_many(budgets, ["c1", "c2", "c3", "c1"])
        with pytest.raises(AccessBudgetExceededError):
            await charge(budgets, "c4")
    assert budgets.status == "degraded"
    assert budgets.kind == "redis"
    assert len(caplog.records) == 1   # once per back-off period, not once per charge
    assert sink.kinds() == [("budget_warning", "subject_hour"),
                            ("budget_exceeded", "subject_hour")]


async def test_after_the_back_off_redis_is_tried_again_and_warns_again(make, dead_redis,
                                                                       clock, caplog):
    budgets = make(redis=dead_redis, retry_seconds=5)
    with caplog.at_level(logging.WARNING, logger="gateway.limits.counters"):
        await charge_many(budgets, ["c1", "c2"])
        clock.advance(6)
        await charge_many(budgets, ["c3", "c4"])
    assert len(caplog.records) == 2
    assert (await charge(budgets, "c1")).usage["subject_hour"] == (4, 20)


async def test_what_was_counted_during_an_outage_is_written_back(make, redis_client, clock):
    forwarder = RedisForwarder(free_port())     # nothing listens there yet: Redis is "down"
    flaky = type(redis_client).from_url(forwarder.url,
                                        socket_connect_timeout=0.5, socket_timeout=1.0)
    try:
        budgets = make(settings(hour=3), redis=flaky, retry_seconds=5)
        await charge_many(budgets, ["c1", "c2"])
        assert budgets.status == "degraded"
        await forwarder.start()                 # Redis is back
        clock.advance(6)
        assert budgets.status == "ok"
        assert (await charge(budgets, "c1")).usage["subject_hour"] == (2, 3)
        other_process = make(settings(hour=3))
        assert (await charge(other_process, "c3")).usage["subject_hour"] == (3, 3)
        with pytest.raises(AccessBudgetExceededError):
            await charge(budgets, "c4")
    finally:
        await flaky.aclose()
        await forwarder.close()


async def test_a_warning_given_during_an_outage_is_not_given_again(make, redis_client, clock,
                                                                   sink):
    forwarder = RedisForwarder(free_port())
    flaky = type(redis_client).from_url(forwarder.url,
                                        socket_connect_timeout=0.5, socket_timeout=1.0)
    try:
        budgets = make(settings(hour=5), redis=flaky, retry_seconds=5)
        await charge_many(budgets, ["c1", "c2", "c3", "c4"])      # 80 %, counted locally
        await forwarder.start()
        clock.advance(6)
        assert (await charge(budgets, "c5")).usage["subject_hour"] == (5, 5)
    finally:
        await flaky.aclose()
        await forwarder.close()
    assert sink.kinds() == [("budget_warning", "subject_hour")]


async def test_without_redis_budgets_hold_in_process(make):
    budgets = make(settings(hour=2), redis=None)
    assert (budgets.kind, budgets.status) == ("memory", "ok")
    await charge_many(budgets, ["c1", "c2", "c2"])
    with pytest.raises(AccessBudgetExceededError):
        await charge(budgets, "c3")


async def test_colluding_subjects_of_one_organisation_share_its_hourly_budget(make, sink):
    """The audit's finding: five subjects of one organisation got 100 children an hour.
    Now the organisation's hour (default 100) caps them together, and warns at 80 %."""
    budgets = make(BudgetSettings())
    subjects = [f"colluder-{n}@org.example" for n in range(6)]
    child = iter(range(1_000))
    for subject in subjects[:5]:
        for _ in range(20):
            await charge(budgets, f"child-{next(child)}", subject=subject)
    with pytest.raises(AccessBudgetExceededError) as info:
        await charge(budgets, f"child-{next(child)}", subject=subjects[5])
    assert info.value.extensions["budget"] == "organisation_hour"
    kinds = [(a.kind, a.detail["budget"]) for a in sink.alerts]
    assert ("budget_warning", "organisation_hour") in kinds
    assert ("budget_exceeded", "organisation_hour") in kinds
    # A child already counted this hour is still free to look up again.
    await charge(budgets, "child-0", subject=subjects[5])


def test_organisation_hour_default_and_roles():
    assert BudgetLimits().organisation_per_hour == 100
    configured = settings(mash=BudgetLimits(organisation_per_hour=600))
    assert limits_for(configured, frozenset({"mash"})).organisation_per_hour == 600


async def test_without_redis_each_process_enforces_only_its_share(make, dead_redis):
    """Three processes, Redis down: each may count a third of every window, no more."""
    budgets = make(BudgetSettings(default=BudgetLimits(subject_per_hour=9), processes=3),
                   redis=dead_redis)
    await charge_many(budgets, ["c1", "c2", "c3"])
    with pytest.raises(AccessBudgetExceededError):
        await charge(budgets, "c4")


async def test_a_restart_without_redis_keeps_the_counts(make, dead_redis, tmp_path):
    state = tmp_path / "budgets.json"
    configured = BudgetSettings(default=BudgetLimits(subject_per_hour=3),
                                local_state_file=str(state))
    children = ["child-pseudonym-1", "child-pseudonym-2", "child-pseudonym-3"]
    await charge_many(make(configured, redis=dead_redis), children)
    assert oct(state.stat().st_mode & 0o777) == "0o600"
    stored = state.read_text()
    for value in (SUBJECT, ORG, *children):
        assert value not in stored
    restarted = make(configured, redis=dead_redis)   # a new process, the same file
    with pytest.raises(AccessBudgetExceededError):
        await charge(restarted, "child-pseudonym-4")
    assert not (await charge(restarted, children[0])).counted


async def test_a_restart_keeps_nothing_without_a_state_file(make, dead_redis):
    configured = BudgetSettings(default=BudgetLimits(subject_per_hour=3))
    await charge_many(make(configured, redis=dead_redis), ["c1", "c2", "c3"])
    assert (await charge(make(configured, redis=dead_redis), "c4")).counted


async def test_production_may_refuse_instead_of_counting_alone(make, dead_redis):
    from gateway.core.errors import BudgetsUnavailableError

    budgets = make(BudgetSettings(when_redis_down="refuse"), redis=dead_redis)
    with pytest.raises(BudgetsUnavailableError) as info:
        await charge(budgets, "c1")
    assert (info.value.http_status, info.value.extensions["code"]) == (503, "BUDGETS_UNAVAILABLE")
