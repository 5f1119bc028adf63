"""One GraphQL request observed: its span, its operation label, its outcome code, its metrics.

`request_started` opens the server span (continuing an incoming W3C
`traceparent`) and sets the log's request id; `responded` reads the outcome
code from our own response body; `finished` counts the request and closes it.
`ExecutionSpan`, a strawberry extension, opens the execution span and names the
operation from the parsed, validated document.

Both labels come from closed sets: an operation label is the operation type and
its root fields as the schema names them (not aliases, not the client's
`operationName`), at most `MAX_OPERATIONS` distinct ones per process; a code is
one the gateway defines, else "OTHER".
"""

from __future__ import annotations

import re
import time
from contextvars import ContextVar
from typing import TYPE_CHECKING

from graphql import FieldNode, OperationDefinitionNode
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from strawberry.extensions import SchemaExtension

from gateway.core.errors import GatewayError
from gateway.logs import request_id_var
from gateway.telemetry.metrics import REQUEST_SECONDS, REQUESTS
from gateway.telemetry.tracing import recording, span, tracer

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from contextlib import AbstractContextManager

    from graphql import DocumentNode
    from opentelemetry.trace import Span
    from prometheus_client import Counter, Histogram
    from starlette.responses import Response

__all__ = ["MAX_OPERATIONS", "ExecutionSpan", "RequestObservation", "execution_observed",
           "operation_label", "operation_observed", "outcome_code", "request_started"]

MAX_OPERATIONS = 100
"""Distinct operation labels per process; any further one is counted as "other"."""

_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")
_CODE = re.compile(rb"[A-Z][A-Z_]{1,63}")
_EXTRA_CODES = frozenset({"OK", "GRAPHQL_VALIDATION_FAILED", "ERRORS_TRUNCATED",
                          "INTERNAL_SERVER_ERROR", "PERSISTED_QUERY_NOT_FOUND",
                          "PERSISTED_QUERY_NOT_SUPPORTED"})
_ERRORS, _CODE_KEY = b'"errors":[', b'"code":"'
_propagator = TraceContextTextMapPropagator()
_operations: set[str] = set()
_children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
"""Label children resolved once per (operation, code): both sets are closed and bounded."""
_current: ContextVar[RequestObservation | None] = ContextVar("telemetry_request", default=None)


def _known_codes() -> frozenset[str]:
    """Every `extensions.code` the gateway's error classes define, and a few set elsewhere."""
    found, todo = set(_EXTRA_CODES), [GatewayError]
    while todo:
        cls = todo.pop()
        found.add(cls.code)
        todo.extend(cls.__subclasses__())
    return frozenset(found)


def outcome_code(response: Response) -> str:
    """"OK", or the first error's code in our own response body (from a closed set).

    The top-level `errors` array comes last in the body (after `data`), so the body
    then ends with `]}` and the last `"errors":[` is its key (an alias in `data` comes
    before it); a JSON string cannot hold an unescaped `"code":"`, so the first one
    after that is the first error's code. Anything not a code the gateway defines is
    "OTHER".
    """
    body = getattr(response, "body", b"")
    has_errors = isinstance(body, bytes) and body.endswith(b"]}")  # `"errors":[...]}` closes it
    start = body.rfind(_ERRORS) if has_errors else -1
    if start < 0:
        return "OK" if response.status_code < 400 else "OTHER"
    at = body.find(_CODE_KEY, start)
    if at < 0:
        return "OTHER"
    at += len(_CODE_KEY)
    match = _CODE.fullmatch(body, at, max(at, body.find(b'"', at)))
    code = match.group().decode() if match else ""
    return code if code in _known_codes() else "OTHER"


def operation_label(document: DocumentNode | None, operation_name: str | None) -> str:
    """"query child", "query findChildren", ...: the operation type and its root fields.

    Field names, not aliases: after validation they are names the schema defines.
    """
    if document is None:
        return "-"
    for node in document.definitions:
        if not isinstance(node, OperationDefinitionNode):
            continue
        if operation_name is not None and (node.name is None or node.name.value != operation_name):
            continue
        fields = sorted({s.name.value for s in node.selection_set.selections
                         if isinstance(s, FieldNode)})
        if not fields or not all(_NAME.fullmatch(f) for f in fields):
            return "other"
        return _bounded(f"{node.operation.value} {','.join(fields[:4])}")
    return "-"


def _bounded(label: str) -> str:
    if label in _operations:
        return label
    if len(_operations) >= MAX_OPERATIONS:
        return "other"
    _operations.add(label)
    return label


class RequestObservation:
    """A request between `request_started` and `finished` (see the module docstring)."""

    __slots__ = ("_context", "_current", "_request_id", "_span", "_started", "code", "operation",
                 "status")

    def __init__(self, headers: Mapping[str, str], request_id: str) -> None:
        self.operation = "-"
        self.code = "INTERNAL_SERVER_ERROR"
        self.status = 500
        self._started = time.perf_counter()
        self._span: Span | None = None
        self._context: object = None
        parent = _propagator.extract(headers) if "traceparent" in headers else None
        if recording():
            self._span = tracer.start_span("graphql.request", parent, trace.SpanKind.SERVER,
                                           record_exception=False,
                                           set_status_on_exception=False)
            self._context = otel_context.attach(trace.set_span_in_context(self._span, parent))
        elif parent is not None:  # nothing recorded, but the logs still carry the trace id
            self._context = otel_context.attach(parent)
        self._request_id = request_id_var.set(request_id)
        self._current = _current.set(self)

    def responded(self, response: Response) -> int:
        """Note the response's outcome code; returns its HTTP status."""
        self.status = response.status_code
        self.code = outcome_code(response)
        return self.status

    def finished(self) -> None:
        """Count the request, close its span, and restore the caller's context."""
        key = (self.operation, self.code)
        children = _children.get(key)
        if children is None:
            children = _children[key] = (REQUESTS.labels(*key),
                                         REQUEST_SECONDS.labels(self.operation))
        children[0].inc()
        children[1].observe(time.perf_counter() - self._started)
        if self._span is not None:
            self._span.set_attributes({"graphql.operation": self.operation, "outcome": self.code,
                                       "http.response.status_code": self.status})
            if self.status >= 500:
                self._span.set_status(trace.StatusCode.ERROR)
            self._span.end()
        _current.reset(self._current)
        request_id_var.reset(self._request_id)
        if self._context is not None:
            otel_context.detach(self._context)  # type: ignore[arg-type]


def request_started(headers: Mapping[str, str], request_id: str) -> RequestObservation:
    """Begin observing one request (call `finished` on the returned object, always)."""
    return RequestObservation(headers, request_id)


class ExecutionSpan(SchemaExtension):
    """The "graphql.execute" span, and the operation label for the request's metrics.

    Neither the document, its variables, arguments nor the client's operation name
    is recorded (strawberry's own OpenTelemetryExtension records all of them).
    """

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        with execution_observed(context.graphql_document, context.operation_name):
            yield


def execution_observed(document: DocumentNode | None,
                       operation_name: str | None) -> AbstractContextManager[Span | None]:
    """Name the request's operation for its metrics, and open the "graphql.execute" span.

    For `ExecutionSpan` and for the execution plans (`resolvers.plans`), which
    run without strawberry's extensions.
    """
    return operation_observed(operation_label(document, operation_name))


def operation_observed(label: str) -> AbstractContextManager[Span | None]:
    """`execution_observed` for an operation whose label is already known."""
    observation = _current.get()
    if observation is not None:
        observation.operation = label
    return span("graphql.execute", {"graphql.operation": label})
