"""Micro-benchmark: the gateway's CPU cost of one upstream call on a cache miss.

    .venv/bin/python -m bench.upstream_calls [--calls 2000] [--concurrency 32] [--repeat 5]
                                            [--systems gp,school,council,youth_justice]
                                            [--profile]

Starts the four simulated systems in a subprocess (their CPU is not counted), builds
each system's connector from its built-in manifest exactly as the gateway does
(`connectors.registry.build_connector`: timeout, concurrency cap, breaker, retry around
the raw connector), and calls `fetch` through `gateway.telemetry.upstream.upstream_call`
`--calls` times per system at `--concurrency` calls in flight, on uvloop as the gateway
runs. Prints, per system and over all of them, **CPU microseconds per call** of this
process (`time.process_time`, user + system), the best of `--repeat` timed runs (the
least disturbed on a shared machine), after one warm-up run that opens the pooled
connections; `mean_user_us_per_call` is the user-mode part alone (the rest is the
kernel's, mostly the socket writes and reads). Every call must answer with the child's
facts: a failure stops the bench.

`--profile` prints cProfile's top functions over one run of every system.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import subprocess
import sys
import time
from typing import TYPE_CHECKING, cast

from connectors.manifest import load_manifest
from connectors.registry import build_connector
from connectors.simulators import Population
from gateway.telemetry.upstream import upstream_call

if TYPE_CHECKING:
    from connectors.base import Connector
    from connectors.simulators.records import System

SYSTEMS = ("gp", "school", "council", "youth_justice")


def _connector(system: str, base_url: str) -> Connector:
    manifest = load_manifest(system).model_copy(update={"base_url": base_url,
                                                        "cache_ttl_seconds": 30.0})
    return build_connector(manifest)


async def _run(connector: Connector, nhs_numbers: list[str],
               concurrency: int) -> tuple[float, float]:
    """CPU seconds of this process (all, and user only) to fetch every one of `nhs_numbers`,
    `concurrency` at once."""
    cursor = iter(nhs_numbers)
    name = connector.name

    async def worker() -> None:
        for nhs_number in cursor:
            facts = await upstream_call(name, "fetch", connector.fetch(nhs_number))
            if facts is None or facts.nhs_number != nhs_number:
                raise SystemExit(f"{name}: no facts for a child it knows")

    started, user = time.process_time(), os.times().user
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.process_time() - started, os.times().user - user


async def main(args: argparse.Namespace) -> None:
    population = Population.generate(seed=args.seed, size=args.children)
    pin = ["taskset", "-c", args.simulator_cpus] if args.simulator_cpus else []
    simulators = subprocess.Popen(
        [*pin, sys.executable, "-m", "connectors.simulators", "--latency-ms", str(args.latency_ms),
         "--size", str(args.children), "--seed", str(args.seed)],
        stdout=subprocess.PIPE)
    systems = args.systems.split(",")
    connectors: dict[str, Connector] = {}
    try:
        assert simulators.stdout is not None  # noqa: S101
        urls = json.loads(simulators.stdout.readline())
        connectors = {system: _connector(system, urls[system]) for system in systems}
        fixtures = set(population.fixtures().values())  # some answer oddly on purpose
        members = {system: [child.nhs_number for child in population.members(cast("System", system))
                            if child.nhs_number not in fixtures] for system in systems}
        results: dict[str, float] = {}
        users: dict[str, float] = {}
        for system, connector in connectors.items():
            known = members[system]
            calls = [known[i % len(known)] for i in range(args.calls)]
            await _run(connector, calls[: args.concurrency * 4], args.concurrency)  # warm-up
            runs = [await _run(connector, calls, args.concurrency) for _ in range(args.repeat)]
            results[f"{system}_us_per_call"] = round(min(runs)[0] / args.calls * 1e6, 1)
            users[system] = min(user for _, user in runs) / args.calls * 1e6
        results["mean_us_per_call"] = round(sum(results.values()) / len(results), 1)
        results["mean_user_us_per_call"] = round(sum(users.values()) / len(users), 1)
        print(json.dumps({"calls": args.calls, "concurrency": args.concurrency,
                          "repeat": args.repeat, **results}))
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for system, connector in connectors.items():
                known = members[system]
                await _run(connector, [known[i % len(known)] for i in range(args.calls)],
                           args.concurrency)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(35)
    finally:
        for connector in connectors.values():
            await connector.close()
        simulators.terminate()
        simulators.wait(timeout=10)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.upstream_calls", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000, help="calls per system per timed run")
    parser.add_argument("--concurrency", type=int, default=32, help="calls in flight")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs; the best is kept")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--latency-ms", type=float, default=0.0, help="the simulators' latency")
    parser.add_argument("--children", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--profile", action="store_true", help="cProfile one run of each system")
    parser.add_argument("--cpus", help="pin this process to these CPUs (e.g. 0), as the bench "
                        "pins the gateway")
    parser.add_argument("--simulator-cpus", help="pin the simulators to these CPUs (e.g. 1): "
                        "sharing this process's CPU, their loopback wake-ups are charged to it")
    return parser.parse_args()


def _loop_factory() -> type[asyncio.AbstractEventLoop] | None:
    try:
        import uvloop  # the gateway's loop (uvicorn picks it when installed)
    except ImportError:
        return None
    return uvloop.Loop


if __name__ == "__main__":
    arguments = _arguments()
    if arguments.cpus:
        os.sched_setaffinity(0, {int(cpu) for cpu in arguments.cpus.split(",")})
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(main(arguments))
