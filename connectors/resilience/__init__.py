"""Upstream resilience: small wrappers around a connector, one concern each, composed once.

`resilient` wraps a connector, outermost first, in

1. `Timeout`: the call's overall deadline (the manifest's `timeout_seconds`), across
   everything below, as Envoy's route timeout spans its retries. The layers below read
   it: a wait for a slot and a retry stop in time.
2. `ConcurrencyCap`: at most `max_concurrent` calls in flight. Outside the breaker, so
   our own queueing (`ConnectorSaturatedError`) never counts against the system;
   outside the retries, so a call keeps its slot between tries and the cap bounds the
   requests open to the system.
3. `CircuitBreaker`: outside the retries, so a call counts once, however many tries it
   took (Finagle's failure accrual over its requeues), and an open circuit costs no
   retry at all.
4. `Retry`: transient failures only, full-jitter back-off, the system's retry budget.

The raw connector is innermost. `check` and `close` pass straight through: a health
probe sees the system as it is, whatever the breaker thinks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from connectors.resilience.breaker import CircuitBreaker, CircuitState
from connectors.resilience.concurrency import ConcurrencyCap
from connectors.resilience.retry import Backoff, Retry, RetryBudget
from connectors.resilience.timeout import Timeout
from connectors.resilience.wrapper import ConnectorWrapper, unwrap

if TYPE_CHECKING:
    from connectors.base import Connector
    from connectors.manifest import ResilienceSpec

__all__ = [
    "Backoff",
    "CircuitBreaker",
    "CircuitHealth",
    "CircuitState",
    "ConcurrencyCap",
    "ConnectorWrapper",
    "Retry",
    "RetryBudget",
    "Timeout",
    "circuit_health",
    "resilient",
    "unwrap",
]


def resilient(connector: Connector, spec: ResilienceSpec, timeout_seconds: float) -> Connector:
    """`connector` inside the timeout, cap, breaker and retry layers that `spec` configures."""
    retrying = Retry(connector, attempts=spec.attempts,
                     backoff=Backoff(spec.backoff_base_ms / 1000, spec.backoff_cap_ms / 1000),
                     budget=RetryBudget(spec.retry_budget_ratio, spec.min_retries_per_second))
    breaker = CircuitBreaker(retrying, failures=spec.breaker_failures,
                             open_seconds=spec.breaker_open_seconds)
    return Timeout(ConcurrencyCap(breaker, spec.max_concurrent), timeout_seconds)


@dataclass(frozen=True, slots=True)
class CircuitHealth:
    """What `/readyz` shows of a system's breaker."""

    circuit: str
    """closed, half_open or open."""
    error_rate: float
    """Failed calls over calls in the last minute."""


def circuit_health(connector: Connector) -> CircuitHealth | None:
    """The state of the breaker among `connector`'s wrappers (None when it has none)."""
    layer: Connector = connector
    while isinstance(layer, ConnectorWrapper):
        if isinstance(layer, CircuitBreaker):
            return CircuitHealth(layer.state.label, round(layer.error_rate, 3))
        layer = layer.inner
    return None
