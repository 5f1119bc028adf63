"""Benchmark: the gateway in its own process against simulators with a fixed latency.

    .venv/bin/python -m bench --clients 1,32 --seconds 10 --latency-ms 20

Starts the four simulated systems (one process), the gateway (`contactpoint
serve`, its own process, pinned to CPU 0 where the OS allows), a JWKS for the
development issuer, and N concurrent clients for T seconds, twice: a cache-miss
run (every request a different child) and a cache-hit run (a small warmed set).
Prints requests/s, latency percentiles, errors, p50 / simulator latency and the
gateway's CPU milliseconds per request (utime + stime from /proc over the run):
the figure to compare on a shared, noisy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable

import aiohttp
import asyncpg
from aiohttp import web
from joserfc.jwk import ECKey

from connectors.simulators import Population
from connectors.simulators.records import age_on
from gateway.accountability.audit import init_postgres
from gateway.auth.devissuer import mint_dev_token
from gateway.auth.dpop import make_proof
from gateway.crypto.ids import ChildIdCodec

QUERY = """query Child($id: ID!) {
  child(id: $id, purpose: SAFEGUARDING, caseReference: "BENCH-1") {
    id nhsNumber name { given family } dateOfBirth gender shielded
    address { lines postcode }
    carers { name { given family } relationship phone address { postcode } }
    education { school { name code } }
    primaryCare { practice { name code phone } }
    services { kind name sensitive contact }
    sources { connector status fromCache }
  }
}"""
SCOPES = ("child.identity.read child.contact.read child.education.read child.health.read "
          "child.services.read child.sensitive.read child.shielded.read")
CLIENT = "bench-client"
ISSUER = "https://bench-issuer.contactpoint.invalid"
AUDIENCE = "contactpoint-bench"
JWKS_PATH = "/.well-known/jwks.json"


@dataclass
class Run:
    name: str
    latencies: list[float]
    errors: int
    seconds: float
    cpu_seconds: float | None = None
    """The gateway process's CPU time (user + system) over the run, from /proc."""

    def report(self, latency_ms: float) -> dict[str, Any]:
        ordered = sorted(self.latencies) or [0.0]

        def pct(p: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000, 1)

        p50 = pct(50)
        return {"run": self.name, "requests": len(self.latencies),
                "req_per_s": round(len(self.latencies) / self.seconds, 1),
                "p50_ms": p50, "p95_ms": pct(95), "p99_ms": pct(99),
                "mean_ms": round(statistics.fmean(ordered) * 1000, 1), "errors": self.errors,
                "gateway_cpu_ms_per_req": None if self.cpu_seconds is None or not self.latencies
                else round(self.cpu_seconds * 1000 / len(self.latencies), 3),
                "p50_over_sim_latency": round(p50 / latency_ms, 3) if latency_ms else None}


def _cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process, from /proc (None where there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _measured(pid: int, run: Awaitable[Run]) -> Run:
    """Await a load run and attach the gateway's CPU time spent during it."""
    before = _cpu_seconds(pid)
    result = await run
    after = _cpu_seconds(pid)
    if before is not None and after is not None:
        result.cpu_seconds = after - before
    return result


def _pin(pid: int, cpus: set[int]) -> None:
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(pid, cpus)


def _audit_lines(args: argparse.Namespace, workdir: Path, pg_dsn: str | None) -> list[str]:
    lines = ["[audit]", f'store = "{args.audit}"', f'pseudonym_secret = "{secrets.token_hex(32)}"']
    if args.audit != "none":
        lines.append(f'checkpoint_file = "{workdir / "checkpoints.jsonl"}"')
    if args.audit == "sqlite":
        lines.append(f'sqlite_path = "{workdir / "audit.db"}"')
    if pg_dsn is not None:
        lines.append(f'postgresql_dsn = "{pg_dsn}"')
    return lines


@contextlib.asynccontextmanager
async def _bench_database(server: str) -> AsyncIterator[str]:
    """A fresh database with the audit schema and a gateway role; dropped afterwards."""
    suffix = secrets.token_hex(4)
    name, role = f"cp_bench_{suffix}", f"cp_bench_gw_{suffix}"
    admin = await asyncpg.connect(f"{server}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        await init_postgres(f"{server}/{name}", role)
        host = server.split("@", 1)[1]
        yield f"postgresql://{role}@{host}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()


def _documents_lines(workdir: Path, trusted: bool) -> list[str]:
    """`[documents]`: any document, or (--trusted) only the bench's, from a manifest it writes."""
    if not trusted:
        return ["[documents]", "trusted_only = false"]
    manifest = workdir / "persisted-documents.json"
    manifest.write_text(json.dumps({_sha256(QUERY): QUERY}), encoding="utf-8")
    return ["[documents]", "trusted_only = true", f'manifest = "{manifest}"']


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _config(path: Path, urls: dict[str, str], jwks_url: str, id_secret: str,
            redis_url: str | None, audit: list[str], documents: list[str]) -> None:
    # Production refuses to run unaudited: `--audit none` measures in development mode.
    mode = "development" if 'store = "none"' in audit else "production"
    lines = [
        f'mode = "{mode}"',
        "[auth]", f'issuer = "{ISSUER}"', f'audience = "{AUDIENCE}"', f'jwks_url = "{jwks_url}"',
        "[cache]", f'secret = "{secrets.token_hex(32)}"', f'key_prefix = "bench{os.getpid()}:"',
        *([f'redis_url = "{redis_url}"'] if redis_url else []),
        "[ids]", f'secret = "{id_secret}"',
        *audit,
        *documents,
        "[limits]", "max_children_per_request = 10",
        # The load generator is one user reading thousands of children: lift its budgets
        # and rate limits so the benchmark measures the gateway, not the refusals.
        "[budgets]", "subject_requests_per_minute = 100000000",
        "client_requests_per_minute = 100000000", "burst = 100000",
        *([] if redis_url else ["per_process_accepted = true"]),
        "[budgets.roles.bench]", "subject_per_hour = 100000000", "subject_per_day = 100000000",
        "organisation_per_hour = 100000000", "organisation_per_day = 100000000",
        "[alerts]", f'path = "{path.parent / "alerts.jsonl"}"',
    ]
    for name in (n for n in urls if n != "fixtures"):
        lines += ["[[connectors]]", f'name = "{name}"', f'manifest = "{name}"',
                  f'base_url = "{urls[name]}"', "timeout_seconds = 2.0"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


async def _wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            if process.poll() is not None:
                raise SystemExit("gateway exited during start-up")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url + "/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise SystemExit("gateway did not become healthy")


PROOFS_PER_SECOND = 800
"""DPoP proofs made before each timed run, per second of it: more than the gateway serves
here, so signing stays off the load generator's clock (a fresh one if they run out)."""


def _proofs(url: str, token: str, dpop_key: ECKey | None, seconds: float,
            limit: int | None) -> list[str]:
    """Proofs made ahead of the run (each `jti` fresh; the ±60 s `iat` window covers it)."""
    if dpop_key is None:
        return []
    count = int(seconds * PROOFS_PER_SECOND) if limit is None else limit
    return [make_proof(dpop_key, "POST", url + "/graphql", token) for _ in range(count)]


def _headers(url: str, token: str, dpop_key: ECKey | None, proofs: list[str]) -> dict[str, str]:
    """Bearer, or DPoP with one of the proofs made ahead (or a fresh one if none is left)."""
    if dpop_key is None:
        return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    proof = proofs.pop() if proofs else make_proof(dpop_key, "POST", url + "/graphql", token)
    return {"Authorization": f"DPoP {token}", "Content-Type": "application/json",
            "DPoP": proof}


async def _load(url: str, token: str, ids: list[str], clients: int, seconds: float,
                name: str, limit: int | None = None, dpop_key: ECKey | None = None,
                document: dict[str, str] | None = None) -> Run:
    """`clients` concurrent loops over `ids` for `seconds` (or until `limit` requests).

    Each request names the document as `document` says: its text by default,
    or `{"documentId": ...}` for trusted documents.
    """
    named = document or {"query": QUERY}
    proofs = _proofs(url, token, dpop_key, seconds, limit)
    latencies: list[float] = []
    errors = 0
    cursor = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=clients)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal cursor, errors
        while time.perf_counter() < deadline and (limit is None or cursor < limit):
            child_id = ids[cursor % len(ids)]
            cursor += 1
            body = json.dumps({**named, "variables": {"id": child_id}})
            headers = _headers(url, token, dpop_key, proofs)
            started = time.perf_counter()
            try:
                async with session.post(url + "/graphql", data=body, headers=headers) as response:
                    payload = await response.json()
                ok = response.status == 200 and not payload.get("errors")
            except (aiohttp.ClientError, ValueError):
                ok = False
            if ok:
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1

    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(clients)))
    return Run(name, latencies, errors, time.perf_counter() - started)


async def main(args: argparse.Namespace) -> None:
    population = Population.generate(seed=args.seed, size=args.children)
    simulators = subprocess.Popen(
        [sys.executable, "-m", "connectors.simulators", "--latency-ms", str(args.latency_ms),
         "--size", str(args.children), "--seed", str(args.seed)],
        stdout=subprocess.PIPE)
    key = ECKey.generate_key("P-256", {"kid": "bench-1", "use": "sig", "alg": "ES256"})
    jwks_app = web.Application()

    async def serve_jwks(_: web.Request) -> web.Response:
        return web.json_response({"keys": [key.as_dict(private=False)]})

    jwks_app.router.add_get(JWKS_PATH, serve_jwks)
    jwks_runner = web.AppRunner(jwks_app, access_log=None)
    await jwks_runner.setup()
    site = web.TCPSite(jwks_runner, "127.0.0.1", 0)
    await site.start()
    jwks_port = jwks_runner.addresses[0][1]
    gateway = None
    stack = contextlib.AsyncExitStack()
    try:
        assert simulators.stdout is not None  # noqa: S101
        urls = json.loads(simulators.stdout.readline())
        id_secret = secrets.token_hex(32)
        workdir = Path(tempfile.mkdtemp(prefix="cpg-bench-"))
        config = workdir / "gateway.toml"
        pg_dsn = (await stack.enter_async_context(_bench_database(args.audit_server))
                  if args.audit == "postgresql" else None)
        if args.systems:
            urls = {name: urls[name] for name in args.systems.split(",")}
        _config(config, urls, f"http://127.0.0.1:{jwks_port}{JWKS_PATH}", id_secret,
                None if args.no_redis else args.redis_url, _audit_lines(args, workdir, pg_dsn),
                _documents_lines(workdir, args.trusted))
        document = {"documentId": f"sha256:{_sha256(QUERY)}"} if args.trusted else None
        gateway = subprocess.Popen(
            [sys.executable, "-m", "gateway.web.cli", "serve", "--config", str(config),
             "--port", str(args.port)])
        _pin(gateway.pid, {0})
        _pin(simulators.pid, {1})
        _pin(os.getpid(), {1})
        url = f"http://127.0.0.1:{args.port}"
        await _wait_healthy(url, gateway)
        dpop = ECKey.generate_key("P-256", private=True) if args.dpop else None
        token = mint_dev_token(subject="bench-user", scopes=SCOPES, amr=["mfa"], roles=["bench"],
                               organisation="bench-org", client_id=CLIENT, ttl_seconds=3600,
                               key=key, issuer=ISSUER, audience=AUDIENCE,
                               extra_claims=None if dpop is None else {
                                   "cnf": {"jkt": dpop.thumbprint()}})
        codec = ChildIdCodec(id_secret, 86_400)
        fixtures = set(population.fixtures().values())
        servable = [c.nhs_number for c in population.children
                    if c.nhs_number not in fixtures
                    and age_on(c.date_of_birth, population.today) < 18]
        miss_ids = [codec.encode(nhs, CLIENT) for nhs in servable]
        hit_ids = miss_ids[-args.hot:]
        clients = [int(n) for n in args.clients.split(",")]
        cold = miss_ids[: len(miss_ids) - args.hot]
        print(json.dumps({"clients": clients, "seconds": args.seconds,
                          "simulator_latency_ms": args.latency_ms,
                          "cache": "in-process" if args.no_redis else args.redis_url,
                          "audit": args.audit, "trusted_documents": args.trusted}))
        for n in clients:
            if "miss" in args.runs:
                # each miss run starts where the last stopped, so no child repeats
                miss = await _measured(gateway.pid, _load(url, token, cold, n, args.seconds,
                                                          f"cache-miss x{n}", dpop_key=dpop,
                                                          document=document))
                cold = cold[len(miss.latencies) + miss.errors:]
                print(json.dumps(miss.report(args.latency_ms)), flush=True)
            if "hit" in args.runs:
                # every hot child once, just before: cache entries live 30 s
                await _load(url, token, hit_ids, 32, 60.0, "warm-up", limit=len(hit_ids),
                            dpop_key=dpop, document=document)
                hit = await _measured(gateway.pid, _load(url, token, hit_ids, n, args.seconds,
                                                         f"cache-hit x{n}", dpop_key=dpop,
                                                         document=document))
                print(json.dumps(hit.report(args.latency_ms)), flush=True)
    finally:
        for process in (gateway, simulators):
            if process is not None:
                process.terminate()
                process.wait(timeout=10)
        await jwks_runner.cleanup()
        await stack.aclose()


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="1,32", help="comma-separated concurrencies")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--children", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--hot", type=int, default=200, help="children in the cache-hit set")
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--no-redis", action="store_true", help="use the in-process cache")
    parser.add_argument("--runs", default="miss,hit", help="which runs: miss, hit or both")
    parser.add_argument("--trusted", action="store_true",
                        help="trusted documents only: a manifest of the bench's query, which "
                        "the clients send by documentId")
    parser.add_argument("--dpop", action="store_true",
                        help="DPoP-bound token and a fresh proof per request (RFC 9449), made "
                             "before the timed run")
    parser.add_argument("--systems", default=None,
                        help="comma-separated systems to configure (default: every simulator)")
    parser.add_argument("--audit", choices=["none", "sqlite", "postgresql"], default="sqlite",
                        help="audit store (sqlite: a file in a temporary folder)")
    parser.add_argument("--audit-server", default="postgresql://postgres@127.0.0.1:5432",
                        help="PostgreSQL server (admin) for --audit postgresql: a fresh database "
                        "is made and dropped")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(_arguments()))
