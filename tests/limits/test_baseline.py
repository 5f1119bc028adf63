"""An organisation whose distinct-children rate departs from its baseline is reported."""

from __future__ import annotations

import itertools

import pytest

from gateway.limits.budgets import Budgets
from gateway.settings import BudgetLimits, BudgetSettings
from tests.limits.support import SECRET

ORG = "URN-100777"
ROOMY = BudgetLimits(subject_per_hour=1_000, subject_per_day=10_000,
                     organisation_per_hour=1_000, organisation_per_day=100_000)
_children = itertools.count()


@pytest.fixture
def org_budgets(redis_client, prefix, sink, clock):
    def build(**values: object) -> Budgets:
        return Budgets(BudgetSettings(default=ROOMY, **values), redis_client, prefix, SECRET,
                       sink, clock)
    return build


async def hour_of(budgets: Budgets, clock, children: int) -> None:
    """One hour in which the organisation looks up `children` new children, then the next."""
    for i in range(children):
        await budgets.charge(subject=f"user-{i % 4}", organisation=ORG, roles=frozenset(),
                             child=f"child-{next(_children)}", request_id="req")
    clock.next_hour()


def unusual(sink) -> list:
    return [a for a in sink.alerts if a.kind == "organisation_rate_unusual"]


async def test_an_hour_far_above_the_baseline_alerts_once(org_budgets, clock, sink):
    budgets = org_budgets()
    for _ in range(24):
        await hour_of(budgets, clock, 4)
    assert unusual(sink) == []
    await hour_of(budgets, clock, 40)
    [alert] = unusual(sink)
    assert alert.organisation == ORG
    assert alert.detail["budget"] == "organisation_hour"
    assert alert.detail["baseline"] == pytest.approx(4.0)
    assert alert.detail["used"] == 13  # the first count past both the floor and three times 4
    assert alert.subject != "user-0"  # a pseudonym, as in every alert


async def test_a_usual_hour_never_alerts(org_budgets, clock, sink):
    budgets = org_budgets()
    for children in [5, 7, 6, 8, 5] * 6:
        await hour_of(budgets, clock, children)
    assert unusual(sink) == []


async def test_quiet_hours_do_not_lower_the_baseline(org_budgets, clock, sink):
    """Nights and weekends are not counted as zero: a working day is not unusual."""
    budgets = org_budgets()
    for _ in range(24):
        await hour_of(budgets, clock, 8)
        clock.advance(12 * 3600)  # twelve hours with no lookups at all
    await hour_of(budgets, clock, 20)
    assert unusual(sink) == []
    await hour_of(budgets, clock, 25)
    assert len(unusual(sink)) == 1


async def test_no_alert_before_a_day_of_history(org_budgets, clock, sink):
    budgets = org_budgets()
    for _ in range(10):
        await hour_of(budgets, clock, 2)
    await hour_of(budgets, clock, 60)
    assert unusual(sink) == []


async def test_a_quiet_organisation_is_not_alerted_below_the_floor(org_budgets, clock, sink):
    budgets = org_budgets(baseline_floor=10)
    for _ in range(24):
        await hour_of(budgets, clock, 1)
    await hour_of(budgets, clock, 9)
    assert unusual(sink) == []


async def test_the_ratio_is_configured(org_budgets, clock, sink):
    budgets = org_budgets(baseline_ratio=1.5, baseline_floor=1)
    for _ in range(24):
        await hour_of(budgets, clock, 10)
    await hour_of(budgets, clock, 16)
    [alert] = unusual(sink)
    assert alert.detail["used"] == 16
    assert alert.detail["ratio"] == 1.5
