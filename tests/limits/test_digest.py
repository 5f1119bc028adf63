"""The daily digest's parts: London days, reading a day from the log, the tally, the schedule."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest
from redis.exceptions import RedisError

from gateway.accountability.audit.chain import StoredEvent
from gateway.accountability.audit.events import AuditEvent, encode, format_at
from gateway.accountability.digest import (
    Digest,
    Digester,
    DigestSchedule,
    DigestTally,
    day_bounds,
    london_day,
)
from gateway.alerts import Alert, FileAlertSink
from gateway.crypto.pseudonyms import Pseudonymiser
from tests.limits.support import SECRET, RecordingSink

UTC = dt.UTC
CHILD = "a" * 64
OTHER_CHILD = "b" * 64


def event(at: dt.datetime, organisation: str | None = "org-a", *, action: str = "child.read",
          outcome: str = "released", child: str | None = CHILD,
          count: int | None = None) -> AuditEvent:
    return AuditEvent(at=at, request_id="r", action=action, outcome=outcome, subject="user-7",
                      organisation=organisation, client_id="c", purpose=None,
                      case_reference=None, child=child, count=count)


class ListStore:
    """The two reads the digest makes, over a list (seq = position + 1)."""

    def __init__(self, events: list[AuditEvent]) -> None:
        self.rows = [StoredEvent(n, format_at(e.at), e.child, encode(e), b"", b"", b"")
                     for n, e in enumerate(events, 1)]
        self.reads = 0

    async def last_seq(self) -> int:
        return len(self.rows)

    async def read_events(self, after: int, limit: int) -> list[StoredEvent]:
        self.reads += 1
        return self.rows[after:after + limit]


def tally(sink: RecordingSink | None = None) -> DigestTally:
    return DigestTally(sink or RecordingSink(), None, "t:", SECRET)


@pytest.mark.parametrize(("day", "hours"), [
    (dt.date(2030, 3, 31), 23),      # the clocks go forward
    (dt.date(2030, 10, 27), 25),     # and back
    (dt.date(2030, 6, 1), 24),
])
def test_a_london_day_has_its_own_length_and_starts_at_local_midnight(day, hours):
    start, end = day_bounds(day)
    assert (end - start) == dt.timedelta(hours=hours)
    assert london_day(start) == day
    assert london_day(end - dt.timedelta(microseconds=1)) == day


def test_british_summer_time_moves_the_day_s_start_in_utc():
    assert day_bounds(dt.date(2030, 6, 1))[0] == dt.datetime(2030, 5, 31, 23, tzinfo=UTC)
    assert day_bounds(dt.date(2030, 1, 1))[0] == dt.datetime(2030, 1, 1, tzinfo=UTC)


async def test_a_day_is_read_from_its_own_events_only():
    day = dt.date(2030, 1, 15)
    start, end = day_bounds(day)
    before = [event(start - dt.timedelta(hours=h), child=OTHER_CHILD) for h in range(500, 0, -1)]
    during = [event(start + dt.timedelta(minutes=1)),
              event(start + dt.timedelta(hours=2), child=OTHER_CHILD),
              event(start + dt.timedelta(hours=3)),                        # the same child
              event(start + dt.timedelta(hours=4), outcome="not_found"),
              event(start + dt.timedelta(hours=5), outcome="refused"),
              event(start + dt.timedelta(hours=6), action="request", outcome="rate_limited",
                    child=None, count=7),                                  # a minute's summary
              event(start + dt.timedelta(hours=7), None, action="authentication",
                    outcome="refused", child=None),                        # nobody's
              event(start + dt.timedelta(hours=8), "org-b")]
    after = [event(end + dt.timedelta(hours=h), child=OTHER_CHILD) for h in range(500)]
    store = ListStore([*before, *during, *after])
    [a, b] = await Digester(store, tally(), None).build(day)  # type: ignore[arg-type]
    assert a == Digest(day, "org-a", lookups=3, children=2, refusals=8)
    assert b == Digest(day, "org-b", lookups=1, children=1)
    assert store.reads < 40      # a binary search and a page or two, not the whole log


async def test_an_event_stamped_just_before_its_commit_order_still_counts():
    day = dt.date(2030, 1, 15)
    start, _ = day_bounds(day)
    late = [event(start - dt.timedelta(hours=1)), event(start + dt.timedelta(seconds=5)),
            event(start - dt.timedelta(seconds=2)), event(start + dt.timedelta(seconds=1))]
    [digest] = await Digester(ListStore(late), tally(), None).build(day)  # type: ignore[arg-type]
    assert digest.lookups == 2


async def test_the_tally_counts_reveals_per_london_day_and_passes_every_alert_on():
    sink = RecordingSink()
    counting = tally(sink)
    late_evening = dt.datetime(2030, 6, 1, 23, 30, tzinfo=UTC)    # 00:30 on 2 June in London
    for kind in ("shielded_location_revealed", "sensitive_service_released", "budget_warning"):
        await counting.emit(Alert(kind=kind, at=late_evening, request_id="r",
                                  subject="0" * 16, organisation="org-a"))
    assert len(sink.alerts) == 3
    counts = await counting.counts(dt.date(2030, 6, 2), ["org-a"])
    assert dict(counts["org-a"]) == {"shield_reveals": 1, "sensitive_releases": 1}
    assert await counting.counts(dt.date(2030, 6, 1), ["org-a"]) == {}


async def test_a_digest_names_no_subject_and_the_sink_does_not_mistake_that(tmp_path, caplog):
    sink = FileAlertSink(tmp_path / "alerts.jsonl", Pseudonymiser(SECRET))
    alert = Digest(dt.date(2030, 1, 15), "org-a", lookups=4, children=3).alert(
        dt.datetime(2030, 1, 16, 7, tzinfo=UTC))
    with caplog.at_level(logging.WARNING):
        await sink.emit(alert)
    await sink.close()
    [line] = (tmp_path / "alerts.jsonl").read_text().splitlines()
    assert json.loads(line) == {
        "kind": "organisation_daily_digest", "at": "2030-01-16T07:00:00.000Z",
        "request_id": "digest-2030-01-15", "subject": "", "organisation": "org-a",
        "child": None, "purpose": None,
        "detail": {"date": "2030-01-15", "lookups": 4, "children": 3, "shield_reveals": 0,
                   "sensitive_releases": 0, "refusals": 0}}
    assert caplog.records == []


class Now:
    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


async def test_the_schedule_sends_yesterday_s_digest_once_at_the_configured_time():
    yesterday = dt.datetime(2030, 6, 1, 12, tzinfo=UTC)
    sink = RecordingSink()
    counting = tally(sink)
    now = Now(dt.datetime(2030, 6, 2, 5, 59, tzinfo=UTC))          # 06:59 in London
    store = ListStore([event(yesterday), event(yesterday, "org-b")])
    schedule = DigestSchedule(Digester(store, counting, None, now), counting,  # type: ignore[arg-type]
                              dt.time(7, 0), clock=now)
    await schedule.tick()
    assert sink.alerts == []
    now.at += dt.timedelta(minutes=1)
    await schedule.tick()
    await schedule.tick()
    assert [(a.kind, a.organisation, a.detail["date"]) for a in sink.alerts] == [
        ("organisation_daily_digest", "org-a", "2030-06-01"),
        ("organisation_daily_digest", "org-b", "2030-06-01")]


async def test_a_failing_round_is_logged_and_tried_again(caplog):
    class Broken(ListStore):
        async def last_seq(self) -> int:
            raise OSError("store away")

    sink = RecordingSink()
    counting = tally(sink)
    now = Now(dt.datetime(2030, 6, 2, 9, tzinfo=UTC))
    schedule = DigestSchedule(Digester(Broken([]), counting, None, now), counting,  # type: ignore[arg-type]
                              dt.time(7, 0), clock=now)
    with caplog.at_level(logging.WARNING, logger="gateway.accountability.digest"):
        await schedule.tick()
    assert "round failed (OSError)" in caplog.text
    assert sink.alerts == []


async def test_counts_stay_in_the_process_when_redis_fails(dead_redis):
    sink = RecordingSink()
    counting = DigestTally(sink, dead_redis, "t:", SECRET)
    at = dt.datetime(2030, 6, 1, 12, tzinfo=UTC)
    await counting.emit(Alert(kind="shielded_location_revealed", at=at, request_id="r",
                              subject="0" * 16, organisation="org-a"))
    with pytest.raises(RedisError):
        await counting.flush()
    kept = await counting.counts(dt.date(2030, 6, 1), [])   # kept for the next flush
    assert dict(kept["org-a"]) == {"shield_reveals": 1}
    await counting.close()                       # gives up quietly: the process is ending
    assert sink.closed
