"""What a benchmarked gateway talks to: the simulated systems, the issuer's JWKS, and the
children a run may ask for. `python -m bench` and `python -m bench.peer` share them, so that
both ask the same children of the same systems."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from typing import TYPE_CHECKING

from aiohttp import web

from connectors.simulators.records import age_on

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from joserfc.jwk import ECKey

    from connectors.simulators import Population

__all__ = ["JWKS_PATH", "jwks_server", "servable", "simulators"]

JWKS_PATH = "/.well-known/jwks.json"


def servable(population: Population) -> list[str]:
    """The NHS numbers a run may ask for, in order: under 18 and not a fixture (the demo's
    named children)."""
    fixtures = set(population.fixtures().values())
    return [c.nhs_number for c in population.children
            if c.nhs_number not in fixtures and age_on(c.date_of_birth, population.today) < 18]


@contextlib.contextmanager
def simulators(latency_ms: float, children: int, seed: int) -> Iterator[dict[str, str]]:
    """`python -m connectors.simulators` (the four systems, one process); yields their URLs."""
    process = subprocess.Popen(
        [sys.executable, "-m", "connectors.simulators", "--latency-ms", str(latency_ms),
         "--size", str(children), "--seed", str(seed)], stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None  # noqa: S101
        urls: dict[str, str] = json.loads(process.stdout.readline())
        yield urls
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@contextlib.asynccontextmanager
async def jwks_server(key: ECKey) -> AsyncIterator[str]:
    """A JWKS of `key`'s public half on a free loopback port; yields its URL."""
    app = web.Application()

    async def serve(_: web.Request) -> web.Response:
        return web.json_response({"keys": [key.as_dict(private=False)]})

    app.router.add_get(JWKS_PATH, serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}{JWKS_PATH}"
    finally:
        await runner.cleanup()
