"""Serve the four simulated systems in their own process (for the benchmark).

    python -m connectors.simulators --latency-ms 20 --port-base 0 --size 10000 --seed 2026

prints one JSON line, ``{"gp": URL, "school": URL, "council": URL,
"youth_justice": URL, "fixtures": {...}}``,
then serves until SIGTERM or SIGINT. Uses uvloop when it is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import signal
import sys
from typing import TYPE_CHECKING

from connectors.simulators.population import Population
from connectors.simulators.runner import run_simulators

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m connectors.simulators",
        description="Serve the simulated GP, school, council and youth justice systems "
                    "on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port-base", type=int, default=0,
                        help="GP on this port, school on +1, council on +2, "
                             "youth justice on +3 (0: OS-picked)")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--today", type=dt.date.fromisoformat, default=None,
                        help="the date ages are counted to (default: today, UTC)")
    return parser


async def _serve(args: argparse.Namespace) -> None:
    population = Population.generate(args.seed, args.size, args.today)
    # The population lives as long as the process and never changes: out of the
    # collector's sight, so no full collection walks it again. A collection of a
    # 40,000-child population took 100-200 ms, every call in flight waiting it out:
    # a pause of the simulated systems that a benchmark would blame on the gateway.
    gc.collect()
    gc.freeze()
    base = args.port_base
    ports = (0, 0, 0, 0) if base == 0 else (base, base + 1, base + 2, base + 3)
    async with run_simulators(population, host=args.host, ports=ports,
                              latency_ms=args.latency_ms) as sims:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        announcement = {**sims.urls(), "fixtures": population.fixtures()}
        sys.stdout.write(json.dumps(announcement) + "\n")
        sys.stdout.flush()
        await stop.wait()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop  # optional: absent on some platforms
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: list[str] | None = None) -> int:
    """Run the simulators until signalled; returns the process exit status."""
    args = _parser().parse_args(argv)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
