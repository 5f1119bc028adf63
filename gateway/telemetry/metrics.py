"""Every Prometheus metric family of the gateway, defined once, with closed label sets.

Labels carry only names the configuration or the code defines: operation labels
(GraphQL operation type and root field, validated against the schema), error
codes, system names, window names and outcomes. Never a child's identifier,
name, postcode, case reference, a token or any text a client sent.

Under several worker processes prometheus_client keeps values in files below
`PROMETHEUS_MULTIPROC_DIR` (read by prometheus_client at import); each gauge
therefore says how the processes' values combine (`multiprocess_mode`).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "AUDIT_COMMIT_SECONDS",
    "AUDIT_QUEUE_DEPTH",
    "BUDGET_REFUSALS",
    "CACHE_LOOKUPS",
    "RATE_LIMIT_REFUSALS",
    "REDIS_ROUND_TRIPS",
    "REQUESTS",
    "REQUEST_SECONDS",
    "UPSTREAM_CALLS",
    "UPSTREAM_CIRCUIT_STATE",
    "UPSTREAM_ERRORS",
    "UPSTREAM_SECONDS",
]

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_COMMIT = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

REQUESTS = Counter(
    "contactpoint_requests", "GraphQL requests by operation (type and root field) and outcome "
    "code (OK or the first error's extensions.code).", ["operation", "code"])
REQUEST_SECONDS = Histogram(
    "contactpoint_request_duration_seconds", "Time to answer a GraphQL request, by operation.",
    ["operation"], buckets=_LATENCY)
UPSTREAM_CALLS = Counter(
    "contactpoint_upstream_requests", "Calls to source systems by system, operation "
    "(fetch or search) and outcome (ok or error).", ["system", "operation", "outcome"])
UPSTREAM_SECONDS = Histogram(
    "contactpoint_upstream_duration_seconds", "Latency of calls to source systems.",
    ["system", "operation"], buckets=_LATENCY)
UPSTREAM_ERRORS = Counter(
    "contactpoint_upstream_errors", "Failed calls to source systems by kind of failure "
    "(connection, timeout, saturated, circuit_open, response, protocol, connector, "
    "unexpected).",
    ["system", "operation", "error"])
UPSTREAM_CIRCUIT_STATE = Gauge(
    "contactpoint_upstream_circuit_state", "Circuit breaker state per system: 0 closed, "
    "1 half-open, 2 open (the worst of the worker processes).",
    ["system"], multiprocess_mode="max")
CACHE_LOOKUPS = Counter(
    "contactpoint_cache_lookups", "Cache lookups of one system's answer about one child, "
    "by result (hit or miss).", ["system", "result"])
BUDGET_REFUSALS = Counter(
    "contactpoint_budget_refusals", "Lookups refused because a distinct-children budget "
    "window was full.", ["window"])
RATE_LIMIT_REFUSALS = Counter(
    "contactpoint_rate_limit_refusals", "Requests refused by a request-rate limit.", ["limit"])
REDIS_ROUND_TRIPS = Counter(
    "contactpoint_redis_round_trips", "Round trips to Redis: each command, pipeline or script "
    "call sent (counted by the client's connections).")
AUDIT_COMMIT_SECONDS = Histogram(
    "contactpoint_audit_commit_duration_seconds", "Time to commit one batch of audit events "
    "to the store, by outcome (ok or failed).", ["outcome"], buckets=_COMMIT)
AUDIT_QUEUE_DEPTH = Gauge(
    "contactpoint_audit_queue_depth", "Audit events waiting to be committed.",
    multiprocess_mode="livesum")
