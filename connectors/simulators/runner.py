"""Run the four simulated systems on loopback, for the demo, the tests and the benchmark.

    async with run_simulators(population) as sims:
        sims.gp.url, sims.school.url, sims.council.url   # "http://127.0.0.1:PORT"
        sims.youth_justice.url
        sims.council.knobs.down = True                    # misbehave, in code

Each system is a real aiohttp server on its own port (OS-picked by default),
with the access log off: the URLs carry NHS numbers and names.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web
from yarl import URL

from connectors.simulators.council import create_council_app
from connectors.simulators.gp_fhir import create_gp_app
from connectors.simulators.knobs import Knobs
from connectors.simulators.school import create_school_app
from connectors.simulators.server import HITS, KNOBS
from connectors.simulators.youth_justice import create_youth_justice_app

if TYPE_CHECKING:
    import collections
    import ssl
    from collections.abc import AsyncIterator

    from connectors.simulators.population import Population

__all__ = ["RunningSimulator", "RunningSimulators", "run_simulators", "serve_simulator"]


@dataclass(frozen=True, slots=True)
class RunningSimulator:
    """One simulated system being served at `url`."""

    name: str
    url: str
    app: web.Application

    @property
    def knobs(self) -> Knobs:
        """The live knobs of this system; changes apply to the next request."""
        return self.app[KNOBS]

    @property
    def hits(self) -> collections.Counter[str]:
        """Requests served so far, per route (e.g. ``"/Organization/{id}"``)."""
        return self.app[HITS]


@dataclass(frozen=True, slots=True)
class RunningSimulators:
    """The GP, school, council and youth justice systems, serving one population."""

    population: Population
    gp: RunningSimulator
    school: RunningSimulator
    council: RunningSimulator
    youth_justice: RunningSimulator

    def urls(self) -> dict[str, str]:
        """Base URL per system: ``{"gp", "school", "council", "youth_justice"}``."""
        return {sim.name: sim.url
                for sim in (self.gp, self.school, self.council, self.youth_justice)}


@contextlib.asynccontextmanager
async def run_simulators(
    population: Population, *, host: str = "127.0.0.1",
    ports: tuple[int, int, int, int] = (0, 0, 0, 0), latency_ms: float = 0.0,
    include_supported: bool = True, seed: int = 0, shutdown_timeout: float = 1.0,
) -> AsyncIterator[RunningSimulators]:
    """Serve the four systems (GP, school, council, youth justice, on `ports`) until exit.

    `latency_ms` starts every system with that delay; `include_supported`
    is passed to the GP system; `seed` seeds their error draws.
    `shutdown_timeout` bounds how long exit waits for requests still running.
    """
    apps = (
        ("gp", create_gp_app(population, Knobs(latency_ms=latency_ms),
                             include_supported=include_supported, seed=seed)),
        ("school", create_school_app(population, Knobs(latency_ms=latency_ms), seed=seed + 1)),
        ("council", create_council_app(population, Knobs(latency_ms=latency_ms), seed=seed + 2)),
        ("youth_justice", create_youth_justice_app(population, Knobs(latency_ms=latency_ms),
                                                   seed=seed + 3)),
    )
    runners: list[web.AppRunner] = []
    try:
        running = []
        for (name, app), port in zip(apps, ports, strict=True):
            runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                   shutdown_timeout=shutdown_timeout)
            runners.append(runner)
            url = await _start(runner, host, port, None)
            running.append(RunningSimulator(name, url, app))
        yield RunningSimulators(population, *running)
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


@contextlib.asynccontextmanager
async def serve_simulator(
    name: str, app: web.Application, *, host: str = "127.0.0.1", port: int = 0,
    ssl_context: ssl.SSLContext | None = None, shutdown_timeout: float = 1.0,
) -> AsyncIterator[RunningSimulator]:
    """Serve one app (a protected system, the token endpoint) until exit.

    With `ssl_context` it is served over TLS and its URL is ``https://``.
    """
    runner = web.AppRunner(app, access_log=None, handle_signals=False,
                           shutdown_timeout=shutdown_timeout)
    try:
        yield RunningSimulator(name, await _start(runner, host, port, ssl_context), app)
    finally:
        await runner.cleanup()


async def _start(runner: web.AppRunner, host: str, port: int,
                 ssl_context: ssl.SSLContext | None) -> str:
    """Start `runner` on `host`:`port` (0: any free port); its base URL."""
    await runner.setup()
    await web.TCPSite(runner, host, port, ssl_context=ssl_context).start()
    bound_port = runner.addresses[0][1]
    scheme = "http" if ssl_context is None else "https"
    return str(URL.build(scheme=scheme, host=host, port=bound_port))
