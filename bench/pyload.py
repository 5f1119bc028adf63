"""Load from Python in several processes: closed loop, or open loop at a constant rate.

Each of P processes (spawned, pinned to the load generator's CPUs) runs asyncio with
an aiohttp session of its share of the connections and its own slice of the child
ids (and DPoP proofs). Closed loop: each connection sends its next request when the
last is answered. Open loop (`rate`): process i sends request k at `t0 + k * P / rate`
(its share of the rate) whatever the state of earlier requests, waiting for a free
connection if none is, and measures latency from that *intended* time, so a slow
gateway is not hidden by the client sending less (no coordinated omission). The
processes start together once all are ready; their latencies are merged.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing.synchronize import Event

__all__ = ["LoadSpec", "PyResult", "run_processes"]


@dataclass
class LoadSpec:
    """What one client process sends (picklable: it crosses to a spawned process)."""

    url: str
    token: str
    named: dict[str, str]
    ids: list[str]
    proofs: list[str]
    dpop: bool
    connections: int
    seconds: float
    rate: float | None = None
    """Requests per second from this process; None: closed loop."""
    cpus: set[int] = field(default_factory=set)
    dpop_jwk: dict[str, Any] | None = None
    """The DPoP private key: once `proofs` run out, a fresh proof is signed per request
    here (proofs made ahead are good for 60 s, so long runs sign as they go)."""
    timeline: bool = False
    """Keep every request's intended send time and latency (`bench.timeline`)."""


@dataclass
class PyResult:
    latencies: list[float]
    """Seconds, of successful requests, sorted."""
    errors: int
    seconds: float
    sent: int
    late_ms_p99: float | None = None
    """Open loop: how late (ms) the client itself sent, 99th percentile (its own lag)."""
    unfinished: int = 0
    first_error: str | None = None
    """One failed request's status and body (or exception), to say what the errors were."""
    timeline: list[tuple[float, float | None]] = field(default_factory=list)
    """With `LoadSpec.timeline`: (intended send time, latency in seconds or None for a
    failure) per request, by send time; `time.perf_counter()`, which on Linux is one clock
    for every process."""


async def _client(spec: LoadSpec, ready: Any, start: Event) -> dict[str, Any]:  # noqa: ANN401
    import aiohttp

    headers = {"Content-Type": "application/json",
               "Authorization": f"{'DPoP' if spec.dpop else 'Bearer'} {spec.token}"}
    bodies = [json.dumps({**spec.named, "variables": {"id": i}}) for i in spec.ids]
    proofs = list(reversed(spec.proofs))
    sign = None
    if spec.dpop_jwk is not None:
        from joserfc.jwk import ECKey

        from gateway.auth.dpop import make_proof

        key = ECKey.import_key(spec.dpop_jwk)

        def sign() -> str:
            return make_proof(key, "POST", spec.url + "/graphql", spec.token)
    latencies: list[float] = []
    timeline: list[tuple[float, float | None]] | None = [] if spec.timeline else None
    outstanding: set[float] = set()
    """Intended send times of the requests not answered yet (open loop, with a timeline)."""
    lateness: list[float] = []
    errors = sent = 0
    cursor = 0
    first_error: str | None = None
    connector = aiohttp.TCPConnector(limit=spec.connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(intended: float) -> None:
            nonlocal cursor, errors, sent
            body = bodies[cursor % len(bodies)]
            cursor += 1
            sent += 1
            extra = ({} if not spec.dpop else {"DPoP": proofs.pop()} if proofs else
                     {"DPoP": sign()} if sign is not None else {})
            nonlocal first_error
            if timeline is not None:
                outstanding.add(intended)
            try:
                async with session.post(spec.url + "/graphql", data=body,
                                        headers={**headers, **extra}) as response:
                    payload = await response.read()
                ok = response.status == 200 and b'"errors"' not in payload
                failure = f"{response.status} {payload[:300].decode(errors='replace')}"
            except (TimeoutError, aiohttp.ClientError) as exc:
                ok, failure = False, repr(exc)
            latency = time.perf_counter() - intended if ok else None
            if latency is not None:
                latencies.append(latency)
            else:
                errors += 1
                first_error = first_error or failure
            if timeline is not None:
                outstanding.discard(intended)
                timeline.append((intended, latency))

        # What the client holds from here on (its session, bodies, imports) out of its
        # collector's sight: a full collection then walks only what the run makes, not a
        # pause in the middle of the measurement.
        gc.collect()
        gc.freeze()
        ready.put(os.getpid())
        await asyncio.to_thread(start.wait)
        started = time.perf_counter()
        deadline = started + spec.seconds
        if spec.rate is None:
            async def loop() -> None:
                while time.perf_counter() < deadline:
                    await one(time.perf_counter())
            await asyncio.gather(*(loop() for _ in range(spec.connections)))
            unfinished = 0
        else:
            interval = 1.0 / spec.rate
            tasks: set[asyncio.Task[None]] = set()
            k = 0
            while (intended := started + k * interval) < deadline:
                now = time.perf_counter()
                if intended > now:
                    await asyncio.sleep(intended - now)
                    continue
                lateness.append(now - intended)
                task = asyncio.create_task(one(intended))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                k += 1
            _, pending = await asyncio.wait(tasks, timeout=15) if tasks else (set(), set())
            for task in pending:
                task.cancel()
            unfinished = len(pending)
            if timeline is not None:  # never answered: failures at their intended times
                timeline += [(at, None) for at in outstanding]
            errors += unfinished
        elapsed = min(time.perf_counter(), deadline) - started if spec.rate else \
            time.perf_counter() - started
    lateness.sort()
    return {"latencies": latencies, "errors": errors, "seconds": elapsed, "sent": sent,
            "late_ms_p99": round(lateness[int(0.99 * (len(lateness) - 1))] * 1000, 2)
            if lateness else None, "unfinished": unfinished, "first_error": first_error,
            "timeline": timeline or []}


def _process(spec: LoadSpec, ready: Any, start: Event, results: Any) -> None:  # noqa: ANN401
    if spec.cpus:
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setaffinity(0, spec.cpus)
    try:
        results.put(asyncio.run(_client(spec, ready, start)))
    except Exception as exc:  # noqa: BLE001 # reported to the parent, which raises
        ready.put(None)  # (perhaps a second time: the parent stops at the first failure)
        results.put({"failed": repr(exc)})


def run_processes(specs: list[LoadSpec], on_start: Any = None) -> PyResult:  # noqa: ANN401
    """Run one client process per spec, started together; merge their results.

    Blocking (call it in a thread); `on_start()` is called just before they are let go
    (to read the gateway's counters), and the result's `seconds` is the longest
    process's.
    """
    context = multiprocessing.get_context("spawn")
    ready, results, start = context.Queue(), context.Queue(), context.Event()
    processes = [context.Process(target=_process, args=(s, ready, start, results), daemon=True)
                 for s in specs]
    for process in processes:
        process.start()
    for _ in processes:
        if ready.get(timeout=120) is None:
            break
    if on_start is not None:
        on_start()
    start.set()
    parts = [results.get() for _ in processes]
    for process in processes:
        process.join(timeout=30)
    failed = [p["failed"] for p in parts if "failed" in p]
    if failed:
        raise RuntimeError(f"load process failed: {failed[0]}")
    late = [p["late_ms_p99"] for p in parts if p["late_ms_p99"] is not None]
    return PyResult(latencies=sorted(x for p in parts for x in p["latencies"]),
                    errors=sum(p["errors"] for p in parts),
                    seconds=max(p["seconds"] for p in parts), sent=sum(p["sent"] for p in parts),
                    late_ms_p99=max(late) if late else None,
                    unfinished=sum(p["unfinished"] for p in parts),
                    first_error=next((p["first_error"] for p in parts if p["first_error"]), None),
                    timeline=sorted((x for p in parts for x in p["timeline"]),
                                    key=lambda x: x[0]))
