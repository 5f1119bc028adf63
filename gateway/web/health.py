"""`/healthz` (the process is up) and `/readyz` (what the gateway can reach, and how)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse

from connectors.errors import ConnectorError
from connectors.resilience import circuit_health
from gateway.core.errors import GatewayError

if TYPE_CHECKING:
    from starlette.requests import Request

    from connectors.base import Connector
    from gateway.web.runtime import Runtime

__all__ = ["healthz", "readyz"]

_PROBE_TIMEOUT = 1.0
_REUSE_SECONDS = 2.0  # readiness is cached briefly so probes cannot amplify load upstream


async def healthz(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})


async def _probe(connector: Connector) -> dict[str, Any]:
    started = time.perf_counter()
    circuit = circuit_health(connector)
    # The breaker's view (recent calls) beside the probe's (this moment): both are news.
    seen = {} if circuit is None else {"circuit": circuit.circuit,
                                       "error_rate": circuit.error_rate}
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT):
            await connector.check()
    except (ConnectorError, TimeoutError) as exc:
        return {"status": "unavailable", "reason": type(exc).__name__, **seen}
    return {"status": "ok", "ms": round((time.perf_counter() - started) * 1000, 1), **seen}


async def _keys(runtime: Runtime) -> dict[str, Any]:
    try:
        status = await runtime.jwks.check()
    except GatewayError:
        status = runtime.jwks.status
    return {"status": "ok" if status.ready else "unavailable", "keys": status.key_count,
            "stale": status.stale, "expired": status.expired}


async def _audit_probe(runtime: Runtime) -> bool:
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT):
            return await runtime.accountability.audit.check()
    except TimeoutError:
        return False


async def _report(runtime: Runtime) -> tuple[int, dict[str, Any]]:
    lease = runtime.registry.take()  # the systems in service now, kept open while probed
    in_service = lease.connector_set
    names = list(in_service.connectors)
    audit = runtime.accountability.audit
    try:
        probes, cache_ok, keys, audit_ok = await asyncio.gather(
            asyncio.gather(*(_probe(in_service.connectors[n]) for n in names)),
            runtime.store.ping(), _keys(runtime), _audit_probe(runtime))
    finally:
        lease.release()
    # The manifest version in service: which registration answers, as GET /admin/connectors.
    connectors = {n: {**p, "version": in_service.versions[n]}
                  for n, p in zip(names, probes, strict=True)}
    up = sum(p["status"] == "ok" for p in probes)
    circuits_closed = all(p.get("circuit", "closed") == "closed" for p in probes)
    # No audit, no release: a gateway whose audit store is down can serve nothing.
    ready = up > 0 and keys["status"] == "ok" and audit_ok
    body = {
        "status": "unready" if not ready else (
            "ready" if up == len(names) and cache_ok and circuits_closed else "degraded"),
        "cache": {"kind": runtime.store.kind, "status": "ok" if cache_ok else "unavailable",
                  "note": None if cache_ok else "serving uncached"},
        "auth": {"jwks": keys},
        "audit": {"store": runtime.settings.audit.store,
                  "status": audit.status if audit_ok else "unavailable"},
        "budgets": {"status": runtime.budgets.status},
        "connectors": connectors,
    }
    return (200 if ready else 503), body


async def readyz(request: Request) -> JSONResponse:
    state = request.app.state
    now = time.monotonic()
    cached = getattr(state, "readiness", None)
    if cached is None or now - cached[0] > _REUSE_SECONDS:
        cached = (now, *await _report(state.runtime))
        state.readiness = cached
    return JSONResponse(cached[2], status_code=cached[1], headers={"Cache-Control": "no-store"})
