"""The resilience wrappers (issue 10): timeout, retry within a budget, circuit breaker, cap.

Each is tested alone with a scripted connector where only the logic matters, and with a
real simulator where the acceptance asks for it: the simulator's own request counts
show that retries stay within the budget and that an open circuit asks nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from connectors.base import Connector
from connectors.errors import (
    ConnectorCircuitOpenError,
    ConnectorConnectionError,
    ConnectorError,
    ConnectorProtocolError,
    ConnectorResponseError,
    ConnectorSaturatedError,
    ConnectorTimeoutError,
)
from connectors.manifest import ManifestError, ResilienceSpec, load_manifest, manifest_from_dict
from connectors.registry import build_connector, build_raw_connector
from connectors.resilience import (
    Backoff,
    CircuitBreaker,
    CircuitState,
    ConcurrencyCap,
    Retry,
    RetryBudget,
    Timeout,
    circuit_health,
    resilient,
    unwrap,
)
from connectors.resilience.timeout import expired, remaining
from connectors.resilience.window import RollingCount
from gateway.core.facts import SourceFacts
from gateway.telemetry.metrics import UPSTREAM_CIRCUIT_STATE


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class Scripted:
    """A connector whose `fetch` raises or returns the next item of a script."""

    name = "scripted"
    kind = "python"
    can_shield = False
    provides = frozenset({"gender"})
    cache_ttl = 0.0

    def __init__(self, *script: object, delay: float = 0.0) -> None:
        self.script = list(script)
        self.calls = 0
        self.delay = delay
        self.checked = self.closed = 0

    async def fetch(self, nhs_number: str) -> SourceFacts | None:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        item = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(item, BaseException):
            raise item
        return SourceFacts(nhs_number=nhs_number, gender="unknown")

    async def search(self, criteria: object) -> list[SourceFacts]:
        await self.fetch("9990000018")
        return []

    async def check(self) -> None:
        self.checked += 1

    async def close(self) -> None:
        self.closed += 1


def no_wait(low: float, high: float) -> float:
    return 0.0


def retry(inner: Connector, attempts: int = 3, budget: RetryBudget | None = None) -> Retry:
    return Retry(inner, attempts=attempts, backoff=Backoff(0.05, 0.5, draw=no_wait),
                 budget=budget or RetryBudget(1.0, 100))


NHS = "9990000018"
SERVER_ERROR = ConnectorResponseError("scripted", 503)


@pytest.fixture(autouse=True)
def _no_scripted_circuit_left_behind():
    """The gauge is the process's: the scripted system must not outlive its tests there."""
    yield
    with contextlib.suppress(KeyError):
        UPSTREAM_CIRCUIT_STATE.remove(Scripted.name)


# -- the window and the budget ------------------------------------------------------

def test_a_rolling_count_forgets_what_is_older_than_its_window():
    clock = Clock()
    count = RollingCount(10, clock)
    count.add(3)
    clock.now += 5
    count.add()
    assert count.total() == 4
    clock.now += 5
    assert count.total() == 1
    clock.now += 10
    assert count.total() == 0


def test_the_budget_allows_its_ratio_of_calls_plus_the_reserve():
    clock = Clock()
    budget = RetryBudget(0.2, 0.5, ttl=10, clock=clock)  # a reserve of 5 per 10 s
    for _ in range(50):
        budget.record_call()
    allowed = sum(budget.try_retry() for _ in range(100))
    assert allowed == 0.2 * 50 + 5
    clock.now += 11  # deposits and withdrawals expire together
    assert sum(budget.try_retry() for _ in range(100)) == 5


def test_full_jitter_back_off_draws_below_a_capped_exponential():
    highs = []
    backoff = Backoff(0.05, 0.3, draw=lambda low, high: highs.append((low, high)) or high)
    assert [backoff.delay(n) for n in (1, 2, 3, 4, 5)] == [0.05, 0.1, 0.2, 0.3, 0.3]
    assert {low for low, _ in highs} == {0.0}


# -- retry ----------------------------------------------------------------------------

@pytest.mark.parametrize("error", [
    ConnectorConnectionError("scripted", "refused"),
    ConnectorTimeoutError("scripted", "slow"),
    ConnectorResponseError("scripted", 500),
    ConnectorResponseError("scripted", 503),
])
async def test_a_transient_failure_is_retried(error):
    inner = Scripted(error, "ok")
    assert (await retry(inner).fetch(NHS)).gender == "unknown"
    assert inner.calls == 2


@pytest.mark.parametrize("error", [
    ConnectorResponseError("scripted", 400),
    ConnectorResponseError("scripted", 404),
    ConnectorResponseError("scripted", 429),
    ConnectorProtocolError("scripted", "malformed answer"),
    ConnectorError("scripted", "anything else"),
])
async def test_an_answer_is_not_retried(error):
    inner = Scripted(error, "ok")
    with pytest.raises(type(error)):
        await retry(inner).fetch(NHS)
    assert inner.calls == 1


async def test_retries_stop_at_the_attempts_and_search_is_retried_too():
    inner = Scripted(SERVER_ERROR)
    with pytest.raises(ConnectorResponseError):
        await retry(inner, attempts=3).fetch(NHS)
    assert inner.calls == 3
    inner.calls = 0
    with pytest.raises(ConnectorResponseError):
        await retry(inner, attempts=2).search(object())  # type: ignore[arg-type]
    assert inner.calls == 2


async def test_no_retry_that_the_deadline_leaves_no_room_for():
    # A try that failed after 0.3 s of a 0.5 s deadline: another cannot finish in time.
    inner = Scripted(SERVER_ERROR, "ok", delay=0.3)
    with pytest.raises(ConnectorResponseError):
        await Timeout(retry(inner), 0.5).fetch(NHS)
    assert inner.calls == 1


async def test_an_exhausted_budget_stops_retries():
    inner = Scripted(SERVER_ERROR)
    wrapped = retry(inner, attempts=5, budget=RetryBudget(0.0, 0.0))
    with pytest.raises(ConnectorResponseError):
        await wrapped.fetch(NHS)
    assert inner.calls == 1


async def test_under_a_failing_system_retries_stay_within_the_budget(sims, population):
    """Acceptance: the simulator's own count, against the budget's bound."""
    sims.school.knobs.error_rate = 1.0
    spec = ResilienceSpec(attempts=3, backoff_base_ms=0, backoff_cap_ms=0,
                          retry_budget_ratio=0.2, min_retries_per_second=0.5,
                          breaker_failures=1_000)
    connector = _built("school", sims.school.url, spec)
    calls = 60
    try:
        for _ in range(calls):
            with pytest.raises(ConnectorResponseError):
                await connector.fetch(population.fixtures()["ordinary"])
    finally:
        await connector.close()
    requests = sum(sims.school.hits.values())
    budget = calls * 0.2 + 0.5 * 10
    assert calls < requests <= calls + budget  # without the budget: 3 * calls
    assert requests == calls + budget  # each retry the budget allowed was made


# -- the circuit breaker ---------------------------------------------------------------

async def test_the_breaker_opens_fails_fast_probes_and_closes(sims, population, caplog):
    """Acceptance: a failing simulator opens the circuit; it recovers when the system does."""
    clock = Clock()
    raw = build_raw_connector(_manifest("school", sims.school.url, ResilienceSpec()))
    breaker = CircuitBreaker(raw, failures=3, open_seconds=10, clock=clock)
    nhs = population.fixtures()["ordinary"]
    sims.school.knobs.error_rate = 1.0
    try:
        with caplog.at_level(logging.WARNING, logger="connectors.resilience.breaker"):
            for _ in range(3):
                with pytest.raises(ConnectorResponseError):
                    await breaker.fetch(nhs)
            assert breaker.state is CircuitState.OPEN
            asked = sum(sims.school.hits.values())
            with pytest.raises(ConnectorCircuitOpenError) as caught:
                await breaker.fetch(nhs)
            assert caught.value.code == "UPSTREAM_UNAVAILABLE"
            assert sum(sims.school.hits.values()) == asked  # failed fast: nobody was asked

            clock.now += 10
            assert breaker.state is CircuitState.HALF_OPEN
            with pytest.raises(ConnectorResponseError):  # the probe fails: open again
                await breaker.fetch(nhs)
            assert breaker.state is CircuitState.OPEN
            clock.now += 10
            sims.school.knobs.reset()
            assert (await breaker.fetch(nhs)).nhs_number == nhs  # the probe succeeds
            assert breaker.state is CircuitState.CLOSED
    finally:
        await raw.close()
    moves = [r.getMessage() for r in caplog.records]
    assert moves == [
        "circuit school: closed -> open (recent error rate 100%)",
        "circuit school: open -> half_open (recent error rate 100%)",
        "circuit school: half_open -> open (recent error rate 100%)",
        "circuit school: open -> half_open (recent error rate 100%)",
        "circuit school: half_open -> closed (recent error rate 80%)",
    ]
    assert nhs not in " ".join(moves)


async def test_half_open_lets_one_probe_through_at_a_time():
    clock = Clock()
    inner = Scripted(SERVER_ERROR, delay=0.0)
    breaker = CircuitBreaker(inner, failures=1, open_seconds=5, clock=clock)
    with pytest.raises(ConnectorResponseError):
        await breaker.fetch(NHS)
    clock.now += 5
    inner.script, inner.delay = ["ok"], 0.05
    probe = asyncio.ensure_future(breaker.fetch(NHS))
    await asyncio.sleep(0)
    with pytest.raises(ConnectorCircuitOpenError):
        await breaker.fetch(NHS)
    await probe
    assert breaker.state is CircuitState.CLOSED
    assert inner.calls == 2


async def test_answers_that_are_not_outages_do_not_open_the_circuit():
    inner = Scripted(ConnectorResponseError("scripted", 404), ConnectorProtocolError("s", "x"))
    breaker = CircuitBreaker(inner, failures=2, open_seconds=5)
    for _ in range(5):
        with pytest.raises(ConnectorError):
            await breaker.fetch(NHS)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.error_rate == 1.0  # still errors, in the rate /readyz shows


async def test_a_success_resets_the_count_of_consecutive_failures():
    inner = Scripted(SERVER_ERROR, "ok", SERVER_ERROR, "ok")
    breaker = CircuitBreaker(inner, failures=2, open_seconds=5)
    for _ in range(4):
        await asyncio.gather(breaker.fetch(NHS), return_exceptions=True)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.error_rate == 0.5


async def test_a_call_the_deadline_cut_short_counts_as_a_failure():
    breaker = CircuitBreaker(Scripted("ok", delay=5), failures=1, open_seconds=5)
    with pytest.raises(ConnectorTimeoutError):
        await Timeout(breaker, 0.05).fetch(NHS)
    assert breaker.state is CircuitState.OPEN


async def test_a_call_its_caller_cancelled_counts_as_nothing():
    clock = Clock()
    inner = Scripted(SERVER_ERROR)
    breaker = CircuitBreaker(inner, failures=1, open_seconds=5, clock=clock)
    await asyncio.gather(breaker.fetch(NHS), return_exceptions=True)
    clock.now += 5
    inner.delay = 5
    probe = asyncio.ensure_future(breaker.fetch(NHS))
    await asyncio.sleep(0.01)
    probe.cancel()
    await asyncio.gather(probe, return_exceptions=True)
    assert breaker.state is CircuitState.HALF_OPEN  # and the next call may probe
    inner.script, inner.delay = ["ok"], 0
    await breaker.fetch(NHS)
    assert breaker.state is CircuitState.CLOSED


# -- the concurrency cap and the timeout -------------------------------------------------

async def test_a_slow_system_never_holds_more_than_the_cap():
    """Acceptance: counted at the system, which answers slowly (and badly)."""
    seen = {"now": 0, "most": 0, "total": 0}

    async def slow(_: web.Request) -> web.Response:
        seen["now"] += 1
        seen["total"] += 1
        seen["most"] = max(seen["most"], seen["now"])
        try:
            await asyncio.sleep(0.1)
        finally:
            seen["now"] -= 1
        return web.Response(status=503)

    app = web.Application()
    app.router.add_get("/api/v1/pupils", slow)
    async with TestServer(app, host="127.0.0.1") as server:
        spec = ResilienceSpec(attempts=1, max_concurrent=3, breaker_failures=1_000)
        connector = _built("school", str(server.make_url("")), spec, timeout=5.0)
        try:
            results = await asyncio.gather(*(connector.fetch(NHS) for _ in range(12)),
                                           return_exceptions=True)
        finally:
            await connector.close()
    assert all(isinstance(r, ConnectorResponseError) for r in results)
    assert (seen["total"], seen["most"]) == (12, 3)


async def test_a_call_waiting_for_a_slot_waits_only_until_its_deadline():
    inner = Scripted("ok", delay=5)
    cap = ConcurrencyCap(inner, 1)
    holder = asyncio.ensure_future(cap.fetch(NHS))
    await asyncio.sleep(0)
    with pytest.raises(ConnectorSaturatedError) as caught:
        await Timeout(cap, 0.05).fetch(NHS)
    assert isinstance(caught.value, ConnectorTimeoutError)
    assert (inner.calls, cap.in_flight) == (1, 1)
    holder.cancel()
    await asyncio.gather(holder, return_exceptions=True)
    assert cap.in_flight == 0


async def test_the_timeout_spans_the_retries_and_their_back_off():
    inner = Scripted(ConnectorConnectionError("scripted", "refused"), delay=0.04)
    wrapped = Timeout(Retry(inner, attempts=5, backoff=Backoff(0.03, 0.03, draw=lambda a, b: b),
                            budget=RetryBudget(1.0, 100)), 0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ConnectorError):
        await wrapped.fetch(NHS)
    assert loop.time() - started < 0.25
    assert inner.calls < 5  # 5 tries and 4 back-offs would take 0.32 s


async def test_a_timed_out_call_leaves_its_task_uncancelled():
    with pytest.raises(ConnectorTimeoutError) as caught:
        await Timeout(Scripted("ok", delay=5), 0.02).fetch(NHS)
    assert isinstance(caught.value.__cause__, TimeoutError)
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0
    await asyncio.sleep(0.01)  # the task goes on: no cancellation is left pending


async def test_a_cancellation_by_the_caller_is_not_a_timeout():
    call = asyncio.ensure_future(Timeout(Scripted("ok", delay=5), 5).fetch(NHS))
    await asyncio.sleep(0.01)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call


async def test_an_enclosing_deadline_that_falls_first_is_its_own():
    with pytest.raises(TimeoutError) as caught:
        async with asyncio.timeout(0.02):
            await Timeout(Scripted("ok", delay=5), 5).fetch(NHS)
    assert not isinstance(caught.value, ConnectorError)
    with pytest.raises(ConnectorTimeoutError):  # and the other way round
        async with asyncio.timeout(5):
            await Timeout(Scripted("ok", delay=5), 0.02).fetch(NHS)


async def test_a_call_answered_in_time_leaves_no_timer_behind():
    # A deadline whose timer outlived its call would cancel whatever the task did next.
    for failure in ("ok", ConnectorConnectionError("scripted", "refused")):
        with contextlib.suppress(ConnectorError):
            await Timeout(Scripted(failure), 0.02).fetch(NHS)
    await asyncio.sleep(0.05)
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0


async def test_the_deadline_is_readable_inside_the_call_and_gone_after():
    seen: dict[str, object] = {}

    class Peek(Scripted):
        async def fetch(self, nhs_number: str) -> SourceFacts | None:
            seen["remaining"], seen["expired"] = remaining(), expired()
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                seen["expired_on_cancel"] = expired()
                raise
            return None

    with pytest.raises(ConnectorTimeoutError):
        await Timeout(Peek("ok"), 0.05).fetch(NHS)
    assert 0 < seen["remaining"] <= 0.05  # type: ignore[operator]
    assert seen["expired"] is False
    assert seen["expired_on_cancel"] is True
    assert (remaining(), expired()) == (math.inf, False)


async def test_a_request_keeps_its_own_timeout_unless_the_deadline_falls_first():
    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(status=503)

    app = web.Application()
    app.router.add_get("/api/v1/pupils", slow)
    async with TestServer(app, host="127.0.0.1") as server:
        raw = build_raw_connector(_manifest("school", str(server.make_url("")),
                                            ResilienceSpec(), 0.05))
        try:
            with pytest.raises(ConnectorTimeoutError, match="within the timeout"):
                await raw.fetch(NHS)  # no deadline: the request's own timer
            with pytest.raises(ConnectorTimeoutError, match="within the timeout"):
                await Timeout(raw, 5).fetch(NHS)  # a longer deadline: still the request's
            with pytest.raises(ConnectorTimeoutError, match="within the deadline"):
                await Timeout(raw, 0.02).fetch(NHS)
        finally:
            await raw.close()


# -- composition, configuration, delegation ---------------------------------------------

async def test_every_wrapper_delegates_identity_check_and_close():
    inner = Scripted("ok")
    wrapped = resilient(inner, ResilienceSpec(), 1.0)
    assert isinstance(wrapped, Connector)
    assert (wrapped.name, wrapped.kind, wrapped.can_shield, wrapped.provides,
            wrapped.cache_ttl) == ("scripted", "python", False, frozenset({"gender"}), 0.0)
    await wrapped.check()
    await wrapped.close()
    assert (inner.checked, inner.closed) == (1, 1)
    assert unwrap(wrapped) is inner
    assert [type(layer).__name__ for layer in _layers(wrapped)] == [
        "Timeout", "ConcurrencyCap", "CircuitBreaker", "Retry", "Scripted"]
    assert circuit_health(wrapped) == circuit_health(wrapped.inner)
    assert circuit_health(inner) is None


def test_a_manifest_without_a_resilience_table_gets_the_defaults():
    spec = load_manifest("school").resilience
    assert spec == ResilienceSpec()
    assert (spec.attempts, spec.backoff_base_ms, spec.backoff_cap_ms, spec.retry_budget_ratio,
            spec.min_retries_per_second, spec.breaker_failures, spec.breaker_open_seconds,
            spec.max_concurrent) == (2, 50, 500, 0.2, 1, 5, 10, 50)


@pytest.mark.parametrize(("table", "reason"), [
    ({"attempts": 0}, "resilience.attempts"),
    ({"backoff_base_ms": 100, "backoff_cap_ms": 50}, "backoff_cap_ms must be at least"),
    ({"retry_budget_ratio": 2}, "resilience.retry_budget_ratio"),
    ({"breaker_open_seconds": 0}, "resilience.breaker_open_seconds"),
    ({"max_concurrent": 0}, "resilience.max_concurrent"),
    ({"retries": 3}, "resilience.retries"),
])
def test_a_bad_resilience_table_is_one_clear_error(table, reason):
    data = load_manifest("school").model_dump(exclude_none=True)
    data["resilience"] = table
    with pytest.raises(ManifestError, match=reason):
        manifest_from_dict(data, "school.toml")


def _layers(connector):
    layers = [connector]
    while hasattr(layers[-1], "inner"):
        layers.append(layers[-1].inner)
    return layers


def _manifest(kind, url, spec, timeout=1.0):
    return load_manifest(kind).model_copy(update={
        "base_url": url, "timeout_seconds": timeout, "cache_ttl_seconds": 0,
        "resilience": spec})


def _built(kind, url, spec, timeout=1.0):
    return build_connector(_manifest(kind, url, spec, timeout))
