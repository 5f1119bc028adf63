"""Micro-benchmark: the CPU the telemetry hooks add to one request, with no server.

    .venv/bin/python -m bench.telemetry_hooks [--requests 20000] [--repeat 5] [--sdk]

One "request" runs every hook a `child` query with four systems passes through:
`request_started` / `responded` / `finished` (server span, outcome code from a
1 KB body, request counter and latency histogram, log request id), the
execution extension's hook, the `authenticate` span decorator, one `cache.get`
span with four hit/miss counts, four `upstream_call`s, one audit commit and three
queue-depth gauge sets. Each hook is measured against the same work without it.

Without `--sdk` no spans are made (no `[telemetry] otlp_endpoint`); `--sdk`
installs an SDK provider with a batching processor and an exporter that drops
everything, which is the tracing cost when exporting.
CPU time of this process (`time.process_time`), best of `--repeat` runs, in µs.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import time
from typing import TYPE_CHECKING, Any

from graphql import parse
from starlette.datastructures import Headers
from starlette.responses import Response

from gateway.settings import TelemetrySettings
from gateway.telemetry.audit import audit_commit
from gateway.telemetry.metrics import AUDIT_QUEUE_DEPTH
from gateway.telemetry.requests import ExecutionSpan, request_started
from gateway.telemetry.tracing import configure_tracing, traced
from gateway.telemetry.upstream import cache_span, count_cache, upstream_call

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

SYSTEMS = ("gp", "school", "council", "youth_justice")
HEADERS = Headers({"host": "gateway", "content-type": "application/json",
                   "authorization": "Bearer x" * 40, "accept": "application/json"})
BODY = json.dumps({"data": {"child": {"id": "x" * 40, "name": {"given": ["A"], "family": "B"},
                                      "services": [{"kind": "k" * 30}] * 20}}}).encode()
DOCUMENT = parse('query { child(id: "x", purpose: SAFEGUARDING) { id } }')


async def _nothing() -> int:
    return 1


@traced("authenticate")
async def _authenticate() -> int:
    return 1


class _Context:
    graphql_document = DOCUMENT
    operation_name = None


async def _with_hooks(*, upstream: bool = True) -> None:
    observed = request_started(HEADERS, "0123456789abcdef0123456789abcdef")
    await _authenticate()
    extension = ExecutionSpan()
    extension.execution_context = _Context()  # type: ignore[assignment]
    hook = extension.on_execute()
    next(hook)
    with cache_span(4):
        await _nothing()
    count_cache(SYSTEMS, (None, 1, None, 1) if upstream else (1, 1, 1, 1))
    for system in SYSTEMS:
        if upstream:
            await upstream_call(system, "fetch", _nothing())
        else:
            await _nothing()
    AUDIT_QUEUE_DEPTH.set(1)
    with audit_commit(1):
        await _nothing()
    AUDIT_QUEUE_DEPTH.set(0)
    AUDIT_QUEUE_DEPTH.set(0)
    next(hook, None)
    observed.responded(Response(BODY, 200))
    observed.finished()


async def _without_hooks() -> None:
    await _nothing()
    await _nothing()
    for _ in SYSTEMS:
        await _nothing()
    await _nothing()
    Response(BODY, 200)


def _best(run: Callable[[], Awaitable[None]], requests: int, repeat: int) -> float:
    async def loop() -> float:
        for _ in range(200):
            await run()
        started = time.process_time()
        for _ in range(requests):
            await run()
        return (time.process_time() - started) / requests * 1e6

    return min(asyncio.run(loop()) for _ in range(repeat))


def _install_sdk() -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class _Drop(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_Drop(), max_queue_size=1 << 20))
    trace.set_tracer_provider(provider)
    configure_tracing(TelemetrySettings())  # as at app start: sees the SDK provider


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sdk", action="store_true", help="an SDK tracer provider (exporting)")
    args = parser.parse_args()
    if args.sdk:
        _install_sdk()
    base = _best(_without_hooks, args.requests, args.repeat)
    miss = _best(_with_hooks, args.requests, args.repeat)
    hit = _best(functools.partial(_with_hooks, upstream=False), args.requests, args.repeat)
    tracer = "SDK provider, batch processor" if args.sdk else "none (no otlp_endpoint)"
    print(f"spans: {tracer}")
    print(f"without hooks                    {base:7.1f} µs/request")
    print(f"hooks, 4 upstream calls (miss)   {miss - base:7.1f} µs/request")
    print(f"hooks, all from cache (hit)      {hit - base:7.1f} µs/request")


if __name__ == "__main__":
    main()
