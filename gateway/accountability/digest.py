"""The privacy officer's daily digest: one alert per organisation per London day.

Each `organisation_daily_digest` alert counts, for one organisation and one day
in England: the accesses released (`lookups`) and the distinct children they
concerned, the shielded locations revealed, the sensitive services released, and
the refusals (accesses refused, over budget, and authenticated requests refused
whole). A refusal before authentication names no organisation and is left out.

Where the counts come from:

- lookups, children and refusals are read from the audit log at digest time:
  it already holds every access with its organisation and outcome, exactly, for
  every gateway process, at no cost to a request.
- shield reveals and sensitive releases are not in an audit event (it records
  what was released, not whether the child was shielded), so `DigestTally`
  counts the alerts that report them, in process, as they pass to the sink, and
  adds its counts to Redis (one pipeline) every `flush_seconds` and on close.

Several processes may send: a Redis `SET NX` on `dg:sent:{day}:{organisation
HMAC}` lets one send each organisation's digest. Without Redis (one process) the
counts and the guard live in the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from redis.exceptions import RedisError

from gateway.accountability.audit.events import decode, parse_at
from gateway.alerts import Alert
from gateway.crypto.keys import derive_hmac

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    import redis.asyncio as aioredis

    from gateway.accountability.audit.events import AuditEvent
    from gateway.accountability.audit.store import AuditStore
    from gateway.alerts import AlertSink

__all__ = ["LONDON", "REDIS_FAILURES", "Digest", "DigestSchedule", "DigestTally", "Digester",
           "day_bounds", "london_day"]

log = logging.getLogger(__name__)

LONDON = ZoneInfo("Europe/London")

REDIS_FAILURES = (RedisError, OSError, TimeoutError)

TALLIED = {"shielded_location_revealed": "shield_reveals",
           "sensitive_service_released": "sensitive_releases"}
"""Alert kind -> the digest count it adds to."""

_ACCESSES = frozenset({"child.read", "children.search"})
_REFUSALS = frozenset({"refused", "budget_exceeded", "rate_limited", "bad_request"})
_SKEW = dt.timedelta(minutes=10)
"""How far an event's time may stray from its commit order (it is stamped before
its batch commits): the day's range is searched this much wider, then filtered."""
_KEEP_SECONDS = 8 * 86_400
_PAGE = 500


def london_day(at: dt.datetime) -> dt.date:
    """The date in England at the instant `at`."""
    return at.astimezone(LONDON).date()


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants at which `day` begins and ends in England (23, 24 or 25 hours)."""
    start = dt.datetime.combine(day, dt.time(), LONDON)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), LONDON)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


@dataclass(frozen=True, slots=True)
class Digest:
    """One organisation's day, in counts only: no child, no subject."""

    day: dt.date
    organisation: str
    lookups: int = 0
    children: int = 0
    shield_reveals: int = 0
    sensitive_releases: int = 0
    refusals: int = 0

    def alert(self, at: dt.datetime) -> Alert:
        """The `organisation_daily_digest` alert (its subject is empty: it names nobody)."""
        day = self.day.isoformat()
        return Alert(kind="organisation_daily_digest", at=at, request_id=f"digest-{day}",
                     subject="", organisation=self.organisation,
                     detail={"date": day, "lookups": self.lookups, "children": self.children,
                             "shield_reveals": self.shield_reveals,
                             "sensitive_releases": self.sensitive_releases,
                             "refusals": self.refusals})


@dataclass(slots=True)
class _Day:
    lookups: int = 0
    children: set[str] = field(default_factory=set)
    refusals: int = 0

    def add(self, event: AuditEvent) -> None:
        if event.outcome in _REFUSALS:
            self.refusals += event.count or 1
        elif event.action in _ACCESSES and event.outcome == "released":
            self.lookups += 1
            if event.child is not None:
                self.children.add(event.child)


class DigestTally:
    """An `AlertSink` that counts shield reveals and sensitive releases, then passes on.

    Counting is a dictionary update: no request waits on Redis for it. `flush`
    moves the counts to Redis (`HINCRBY`, one pipeline); if Redis fails they stay
    here for the next flush.
    """

    def __init__(self, sink: AlertSink, redis: aioredis.Redis | None, key_prefix: str,
                 secret: str) -> None:
        self._sink = sink
        self._redis = redis
        self._prefix = f"{key_prefix}dg:"
        self._key = derive_hmac(secret, "digest-keys")
        self._counts: Counter[tuple[dt.date, str, str]] = Counter()

    async def emit(self, alert: Alert) -> None:
        count = TALLIED.get(alert.kind)
        if count is not None and alert.organisation is not None:
            self._counts[london_day(alert.at), alert.organisation, count] += 1
        await self._sink.emit(alert)

    async def close(self) -> None:
        with contextlib.suppress(*REDIS_FAILURES):
            await self.flush()
        await self._sink.close()

    def key(self, kind: str, day: dt.date, organisation: str) -> str:
        """The Redis key of `organisation`'s `kind` ("n" counts, "sent") for `day`."""
        # An HMAC, as budgets name organisations: Redis holds no organisation in clear.
        name = self._key.hexdigest(organisation.encode())[:32]
        return f"{self._prefix}{kind}:{day.isoformat()}:{name}"

    async def flush(self) -> None:
        """Add this process's counts to Redis (a no-op without Redis: they stay here)."""
        if self._redis is None or not self._counts:
            return
        counts, self._counts = self._counts, Counter()
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for (day, organisation, name), n in counts.items():
                    key = self.key("n", day, organisation)
                    _ = pipe.hincrby(key, name, n)
                    _ = pipe.expire(key, _KEEP_SECONDS)
                await pipe.execute()
        except BaseException:
            self._counts.update(counts)
            raise

    async def counts(self, day: dt.date, organisations: list[str]) -> dict[str, Counter[str]]:
        """Each organisation's tallied counts for `day`, from Redis and this process."""
        found: dict[str, Counter[str]] = defaultdict(Counter)
        for (counted_day, organisation, name), n in self._counts.items():
            if counted_day == day:
                found[organisation][name] += n
        if self._redis is not None and organisations:
            async with self._redis.pipeline(transaction=False) as pipe:
                for organisation in organisations:
                    _ = pipe.hgetall(self.key("n", day, organisation))
                replies = await pipe.execute()
            for organisation, reply in zip(organisations, replies, strict=True):
                for name, n in reply.items():
                    found[organisation][name.decode()] += int(n)
        return found


async def _events(store: AuditStore, start: dt.datetime,
                  end: dt.datetime) -> AsyncIterator[AuditEvent]:
    """The events stamped in [start, end): found by binary search on seq, read in pages."""
    low, high = 0, await store.last_seq()
    while low < high:  # the last seq before `start - _SKEW`, or 0
        middle = (low + high + 1) // 2
        rows = await store.read_events(middle - 1, 1)
        if rows and parse_at(rows[0].at) < start - _SKEW:
            low = middle
        else:
            high = middle - 1
    after = low
    while rows := await store.read_events(after, _PAGE):
        for row in rows:
            at = parse_at(row.at)
            if at >= end + _SKEW:
                return
            if start <= at < end:
                yield decode(row.body)
        after = rows[-1].seq


class Digester:
    """Builds each organisation's digest for a day and sends it to the sink, once."""

    def __init__(self, store: AuditStore, tally: DigestTally, redis: aioredis.Redis | None,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self._store = store
        self._tally = tally
        self._redis = redis
        self._clock = clock
        self._sent: set[tuple[dt.date, str]] = set()

    async def build(self, day: dt.date) -> list[Digest]:
        """Every organisation's digest for `day` (those with any access or refusal)."""
        days: dict[str, _Day] = defaultdict(_Day)
        start, end = day_bounds(day)
        async for event in _events(self._store, start, end):
            if event.organisation is not None:
                days[event.organisation].add(event)
        tallied = await self._tally.counts(day, sorted(days))
        for organisation in tallied:
            days.setdefault(organisation, _Day())
        return [Digest(day, org, lookups=d.lookups, children=len(d.children),
                       shield_reveals=tallied.get(org, Counter())["shield_reveals"],
                       sensitive_releases=tallied.get(org, Counter())["sensitive_releases"],
                       refusals=d.refusals)
                for org, d in sorted(days.items())]

    async def send(self, day: dt.date, *, once: bool = True) -> list[Digest]:
        """Send `day`'s digests; with `once`, only those no process has sent yet."""
        digests = await self.build(day)
        sent = []
        for digest in digests:
            if once and not await self._claim(day, digest.organisation):
                continue
            await self._tally.emit(digest.alert(self._clock()))
            sent.append(digest)
        return sent

    async def _claim(self, day: dt.date, organisation: str) -> bool:
        if self._redis is None:
            if (day, organisation) in self._sent:
                return False
            self._sent.add((day, organisation))
            return True
        claimed = await self._redis.set(self._tally.key("sent", day, organisation), 1, nx=True,
                                        ex=_KEEP_SECONDS)
        return bool(claimed)


class DigestSchedule:
    """The background task: flushes the tally, and at `at` (London) sends yesterday's digest."""

    def __init__(self, digester: Digester, tally: DigestTally, at: dt.time, *,
                 flush_seconds: float = 60.0,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self._digester = digester
        self._tally = tally
        self._at = at
        self._flush_seconds = flush_seconds
        self._clock = clock
        self._done: dt.date | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="alert-digest")

    async def tick(self) -> None:
        """One round: flush the tally; send yesterday's digest if it is due and unsent."""
        try:
            await self._tally.flush()
            now = self._clock().astimezone(LONDON)
            yesterday = now.date() - dt.timedelta(days=1)
            if now.time() >= self._at and self._done != yesterday:
                await self._digester.send(yesterday)
                self._done = yesterday
        except Exception as exc:  # noqa: BLE001 - a digest must never take a worker down
            log.warning("alert digest: round failed (%s); trying again next round",
                        type(exc).__name__)

    async def _run(self) -> None:
        while True:
            # A round after the first interval, not at start: a gateway that restarts
            # does not read the log while it is still opening it.
            await asyncio.sleep(self._flush_seconds)
            await self.tick()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
