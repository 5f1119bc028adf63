"""A circuit breaker per system: stop calling a system that keeps failing, probe, recover.

Closed: calls pass; `failures` consecutive transient failures (`transient.is_transient`,
after any retries: a call counts once) open the circuit. Open: calls fail at once with
`ConnectorCircuitOpenError`, for `open_seconds`. Half-open: one call at a time goes
through as a probe; its success closes the circuit, its failure opens it again. A call
the deadline cut short counts as a failure; one its caller cancelled, or a connector's
bug (an exception outside `connectors.errors`), changes nothing.

Every change of state is logged (system, from -> to, recent error rate; nothing of any
request) and reported to the `contactpoint_upstream_circuit_state` gauge.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from typing import TYPE_CHECKING, Any, TypeVar

from connectors.errors import ConnectorCircuitOpenError, ConnectorError
from connectors.resilience.timeout import expired
from connectors.resilience.transient import is_transient
from connectors.resilience.window import RollingCount
from connectors.resilience.wrapper import ConnectorWrapper
from gateway.telemetry.upstream import report_circuit

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine

    from connectors.base import Connector
    from gateway.core.facts import DemographicSearch, SourceFacts

__all__ = ["CircuitBreaker", "CircuitState"]

A = TypeVar("A")
T = TypeVar("T")
log = logging.getLogger(__name__)

ERROR_RATE_SECONDS = 60
"""The window of `CircuitBreaker.error_rate`."""


class CircuitState(enum.Enum):
    """A breaker's state; the value is the gauge's (0 closed, 1 half-open, 2 open)."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2

    @property
    def label(self) -> str:
        return self.name.lower()


class CircuitBreaker(ConnectorWrapper):
    """Fails fast while the system keeps failing; see the module's docstring."""

    def __init__(self, inner: Connector, *, failures: int, open_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(inner)
        if failures < 1 or open_seconds <= 0:
            raise ValueError("a breaker needs failures >= 1 and open_seconds > 0")
        self.failures = failures
        self.open_seconds = open_seconds
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._consecutive = 0
        self._opened_at = 0.0
        self._probing = False
        self._calls = RollingCount(ERROR_RATE_SECONDS, clock)
        self._errors = RollingCount(ERROR_RATE_SECONDS, clock)

    @property
    def state(self) -> CircuitState:
        """The state now (an open circuit whose time is up reads as half-open)."""
        reopens = self._opened_at + self.open_seconds
        if self._state is CircuitState.OPEN and self._clock() >= reopens:
            return CircuitState.HALF_OPEN
        return self._state

    @property
    def error_rate(self) -> float:
        """Failed calls (any `ConnectorError`) over calls, in the last minute; 0 with none."""
        calls = self._calls.total()
        return self._errors.total() / calls if calls else 0.0

    def fetch(self, nhs_number: str) -> Coroutine[Any, Any, SourceFacts | None]:
        return self._guarded(self.inner.fetch, nhs_number)

    def search(self, criteria: DemographicSearch) -> Coroutine[Any, Any, list[SourceFacts]]:
        return self._guarded(self.inner.search, criteria)

    async def _guarded(self, call: Callable[[A], Awaitable[T]], arg: A) -> T:
        probe = self._admit()
        try:
            result = await call(arg)
        except ConnectorError as exc:
            self._settle(probe, failed=is_transient(exc), error=True)
            raise
        except asyncio.CancelledError:
            if expired():  # the deadline's cancellation: the system did not answer in time
                self._settle(probe, failed=True, error=True)
            elif probe:
                self._probing = False
            raise
        except Exception:
            # A connector's bug says nothing of the system's health: no change of state.
            self._calls.add()
            self._errors.add()
            if probe:
                self._probing = False
            raise
        self._settle(probe, failed=False, error=False)
        return result

    def _admit(self) -> bool:
        """Let a call through (True when it is the half-open probe) or fail fast."""
        if self._state is CircuitState.CLOSED:
            return False
        if self.state is CircuitState.HALF_OPEN and not self._probing:
            self._move(CircuitState.HALF_OPEN)
            self._probing = True
            return True
        raise ConnectorCircuitOpenError(self.name, "circuit open: the system keeps failing")

    def _settle(self, probe: bool, *, failed: bool, error: bool) -> None:
        self._calls.add()
        if error:
            self._errors.add()
        if probe:
            self._probing = False
        if not failed:
            self._consecutive = 0
            if probe:
                self._move(CircuitState.CLOSED)
            return
        self._consecutive += 1
        if probe or (self._state is CircuitState.CLOSED and self._consecutive >= self.failures):
            self._opened_at = self._clock()
            self._move(CircuitState.OPEN)

    def _move(self, state: CircuitState) -> None:
        if state is self._state:
            return
        before, self._state = self._state, state
        log.warning("circuit %s: %s -> %s (recent error rate %.0f%%)", self.name, before.label,
                    state.label, 100 * self.error_rate)
        report_circuit(self.name, state.value)
