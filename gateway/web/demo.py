"""`contactpoint demo`: the gateway, the simulated local systems and a token issuer, on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
import uvicorn
from aiohttp import web
from redis.exceptions import RedisError

from connectors.simulators import Population, run_simulators
from gateway.auth.devissuer import DEV_AUDIENCE, DEV_ISSUER, JWKS_PATH, create_jwks_app
from gateway.logs import configure_logging
from gateway.settings import build_settings, environment_overrides
from gateway.web.app import create_app
from gateway.web.deadlines import deadline_protocol
from gateway.web.pages import DASHBOARD_DOCUMENTS
from gateway.web.runtime import london_today

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from gateway.settings import Settings

__all__ = ["fixtures_json", "run"]

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEMO_SCOPES = ("child.identity.read child.contact.read child.education.read "
               "child.health.read child.services.read")


def fixtures_json(seed: int, size: int) -> str:
    """Example children of the demo population, by NHS number, as JSON."""
    population = Population.generate(seed=seed, size=size, today=london_today())
    return json.dumps(population.fixtures(), indent=2)


async def _reachable_redis() -> tuple[str | None, str]:
    url = environment_overrides().get("cache", {}).get("redis_url") or DEFAULT_REDIS_URL
    client = aioredis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        await client.ping()
    except (RedisError, OSError):
        return None, f"in-process cache (no Redis answered at {url})"
    finally:
        await client.aclose()
    return url, f"Redis at {url}"


def demo_settings(urls: dict[str, str], jwks_url: str, redis_url: str | None) -> Settings:
    """Development-mode settings for the demo; secrets are fresh for every run."""
    return build_settings({
        "mode": "development",
        "auth": {"issuer": DEV_ISSUER, "audience": DEV_AUDIENCE, "jwks_url": jwks_url},
        "cache": {"redis_url": redis_url, "key_prefix": "cpgdemo:",
                  "secret": secrets.token_urlsafe(32)},
        "ids": {"secret": secrets.token_urlsafe(32)},
        "audit": {"store": "sqlite", "sqlite_path": "contactpoint-demo-audit.db",
                  "pseudonym_secret": "contactpoint-demo-audit-pseudonyms-not-secret"},
        "alerts": {"path": "contactpoint-demo-alerts.jsonl"},
        # A council can try registering its system while the demo serves (README, step 4).
        "registry": {"dir": "contactpoint-demo-registry"},
        "outbox": {"sqlite_path": "contactpoint-demo-outbox.db"},
        "http": {"cors_allow_loopback": True},  # a frontend on any local port may call it
        "documents": {"manifest": str(DASHBOARD_DOCUMENTS)},  # the example dashboard's
        # A frontend developer's tools (GraphiQL, codegen, the GraphQL-over-HTTP audit) send
        # bursts with one token: the demo's request rate is roomy; budgets stay as in production.
        "budgets": {"subject_requests_per_minute": 1_200, "burst": 200},
        "connectors": [{"name": name, "manifest": name, "base_url": url}
                       for name, url in urls.items()],
    })


@contextlib.asynccontextmanager
async def _serve_jwks(host: str) -> AsyncIterator[str]:
    runner = web.AppRunner(create_jwks_app(), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, 0).start()
        yield f"http://{host}:{runner.addresses[0][1]}{JWKS_PATH}"
    finally:
        await runner.cleanup()


def _banner(port: int, host: str, cache: str, urls: dict[str, Any], size: int, seed: int,
            example_nhs: str) -> str:
    systems = ", ".join(f"{name} {url}" for name, url in urls.items())
    return "\n".join([
        "ContactPoint Gateway demo (development mode; every person is invented)",
        f"  gateway    http://{host}:{port}/graphql  (GraphiQL in a browser)",
        f"  cache      {cache}",
        f"  systems    {systems}",
        f"  population {size} children, seed {seed}; examples: contactpoint demo --fixtures",
        f'  token      contactpoint dev-token --sub me --scope "{DEMO_SCOPES}"',
        # The fragment stays in the browser: it only fills in the search form.
        f"  dashboard  http://{host}:{port}/dashboard#nhs={example_nhs}",
        "  try it     scripts/demo-query" + ("" if port == 8000 else f" --port {port}"),
        "Ctrl-C stops it.",
    ])


async def run(*, host: str, port: int, seed: int, size: int, latency_ms: float) -> int:
    """Run the demo until interrupted; returns the exit status."""
    population = Population.generate(seed=seed, size=size, today=london_today())
    redis_url, cache = await _reachable_redis()
    async with (run_simulators(population, host=host, latency_ms=latency_ms) as sims,
                _serve_jwks(host) as jwks_url):
        settings = demo_settings(sims.urls(), jwks_url, redis_url)
        configure_logging("WARNING", settings.telemetry.log_format)
        limits = settings.limits
        server = uvicorn.Server(uvicorn.Config(
            create_app(settings), host=host, port=port, log_level="warning", access_log=False,
            server_header=False,
            http=deadline_protocol(limits.header_read_seconds, limits.body_read_seconds)))
        serving = asyncio.create_task(server.serve())
        while not server.started and not serving.done():  # noqa: ASYNC110 -- uvicorn has no event
            await asyncio.sleep(0.02)
        if server.started:
            print(_banner(port, host, cache, sims.urls(), size, seed,  # noqa: T201
                          population.fixtures()["ordinary"]), flush=True)
        await serving
        return 0 if server.started else 1
