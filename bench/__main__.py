"""Benchmark: the gateway in its own process(es) against simulators with a fixed latency.

    .venv/bin/python -m bench --clients 1,32 --seconds 10 --latency-ms 20
    .venv/bin/python -m bench --clients 32 --runs hit --capacity-fraction 0.7
    .venv/bin/python -m bench --runs hit --clients 32 --soak-seconds 600 --rate 200
    .venv/bin/python -m bench --runs hit --clients 32 --profile 10
    .venv/bin/python -m bench --runs hit --clients 32 --repeat 3 --compare "--workers 1;--workers 2"

Starts the four simulated systems (one process), a JWKS for the bench's issuer, the
gateway (`contactpoint serve [--workers N]`, its own processes) and a load generator,
and measures a cache-miss run (every request a different child) and a cache-hit run
(a small warmed set) at each concurrency.

CPUs: the last `--load-cpus` (default half, at least one) take the load generator,
the simulators and this process; the gateway's processes (all its workers) are pinned
to the rest. On two CPUs: gateway on CPU 0, everything else on CPU 1.

Load (`--load`): `wrk` (the default where it is installed: closed loop, one thread per
load CPU, a Lua script cycling through the child ids) or `python` (P processes of
asyncio + aiohttp). `--rate R` (or `--capacity-fraction F`: F times the capacity a
closed-loop run measured first) is open loop at a constant rate, always from the
Python client, latency counted from each request's intended send time.

Prints JSON lines: a header (with the interpreter's build and speed here,
`bench/interpreter.py`), then per run requests/s, p50/p95/p99, errors, **the
gateway's CPU milliseconds per request** (utime + stime from /proc of the gateway and
all its child processes over the run, ÷ requests: the figure to compare on a shared,
noisy machine), Redis round trips per request (the gateway's
`contactpoint_redis_round_trips_total` before and after; null where /metrics lacks it),
audit commits per request (the commit histogram's count, likewise),
the RSS of each gateway process at the end of the run, and how much of the gateway's
CPUs other processes took (a shared machine). `--soak-seconds` adds RSS over time,
`--profile` py-spy's self time by layer, `--count-calls` the gateway's Python calls per
request (`bench/callcount.py`). README "Benchmark" says what each field is.

The header's `temp` folder holds each gateway's files. At the end the bench removes it,
unless an option asked for files the output names (`--profile`, `--timeline`,
`--soak-seconds`, `--count-calls`, `--instructions`) or the run failed: then it removes
only the gateway's databases (tens to hundreds of MB a run) and keeps the rest (its log
says why a run failed). `--keep` keeps everything.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import hashlib
import json
import os
import secrets
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

import aiohttp
import asyncpg
from joserfc.jwk import ECKey

from bench import callcount, instructions, interpreter, procs, timeline, upstreams
from bench.parse import counter_total, layer_summary, percentile
from bench.pyload import LoadSpec, PyResult, run_processes
from bench.wrkload import WrkResult, lua_script, run_wrk, wrk_path
from connectors.simulators import Population
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
ROUND_TRIPS = "contactpoint_redis_round_trips_total"
AUDIT_COMMITS = "contactpoint_audit_commit_duration_seconds_count"
"""Audit transactions (the commit histogram's count, every outcome)."""
CACHE_LOOKUPS = "contactpoint_cache_lookups_total"
"""Cache lookups, one per system and child; `CACHE_MISSES` the ones that found nothing."""
CACHE_MISSES = "contactpoint_cache_lookups_total{result=miss}"
PY_SPY = Path(sys.executable).parent / "py-spy"
PROFILE_RATE = 200
IDLE_SECONDS = 2.0
PROOF_AHEAD_SECONDS = 45.0
PER_GATEWAY = frozenset({"dpop", "trusted", "audit", "audit_server", "no_redis", "workers",
                         "systems", "redis_url", "profile_threads", "setting"})


@dataclass
class Run:
    """What the in-process client (the warm-ups) got."""

    name: str
    latencies: list[float]
    errors: int
    seconds: float


@dataclass
class Variant:
    """One gateway configuration (`--compare` runs several, each its own gateway)."""

    name: str
    args: argparse.Namespace
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    token: str = ""
    dpop_key: ECKey | None = None
    named: dict[str, str] = field(default_factory=dict)
    idle_cpus_busy: float | None = None
    cpus: set[int] = field(default_factory=set)
    """The CPUs its processes are pinned to."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None  # noqa: S101
        return self.process.pid


@dataclass
class Ids:
    """The children to ask for: cold ones, each used once while they last, and a hot set."""

    cold: list[str]
    hot: list[str]
    cursor: int = 0
    wrapped: bool = False

    def take(self) -> list[str]:
        """The cold ids from the cursor on, then the ones before it (a whole rotation)."""
        return self.cold[self.cursor:] + self.cold[:self.cursor]

    def fresh_hot(self) -> list[str]:
        """A cache-hit run's set: as many cold ids as `hot` holds, not asked for before.

        The run's warm-up then writes every entry anew. A set asked for before keeps
        the entries of its first warm-up (a hit does not renew one), which all expire
        together 30 s later: in the middle of a later run, as a burst of misses.
        """
        ids = self.take()[:len(self.hot)]
        self.used(len(ids))
        return ids

    def used(self, count: int) -> None:
        if self.cursor + count >= len(self.cold):
            self.wrapped = True
        self.cursor = (self.cursor + count) % len(self.cold)
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
            redis_url: str | None, audit: list[str], documents: list[str], *,
            prefix: str = f"bench{os.getpid()}:", processes: int = 1,
            settings: Sequence[str] = ()) -> None:
    # Production refuses to run unaudited: `--audit none` measures in development mode.
    mode = "development" if 'store = "none"' in audit else "production"
    lines = [
        f'mode = "{mode}"',
        "[auth]", f'issuer = "{ISSUER}"', f'audience = "{AUDIENCE}"', f'jwks_url = "{jwks_url}"',
        "[cache]", f'secret = "{secrets.token_hex(32)}"', f'key_prefix = "{prefix}"',
        *([f'redis_url = "{redis_url}"'] if redis_url else []),
        "[ids]", f'secret = "{id_secret}"',
        *audit,
        *documents,
        "[limits]", "max_children_per_request = 10",
        # The load generator is one user reading thousands of children: lift its budgets
        # and rate limits so the benchmark measures the gateway, not the refusals.
        "[budgets]", "subject_requests_per_minute = 100000000",
        "client_requests_per_minute = 100000000", "burst = 100000",
        f"processes = {max(1, processes)}",
        *([] if redis_url else ["per_process_accepted = true"]),
        "[budgets.roles.bench]", "subject_per_hour = 100000000", "subject_per_day = 100000000",
        "organisation_per_hour = 100000000", "organisation_per_day = 100000000",
        "[alerts]", f'path = "{path.parent / "alerts.jsonl"}"',
        # Each gateway its own outbox (notifications, challenges), in its own folder.
        "[outbox]", f'sqlite_path = "{path.parent / "outbox.db"}"',
    ]
    lines = _with_settings(lines, settings)
    for name in (n for n in urls if n != "fixtures"):
        lines += ["[[connectors]]", f'name = "{name}"', f'manifest = "{name}"',
                  f'base_url = "{urls[name]}"', "timeout_seconds = 2.0"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _with_settings(lines: list[str], settings: Sequence[str]) -> list[str]:
    """`lines` with each `section.key=value` (a TOML value) set in its section."""
    by_section: dict[str, list[str]] = {}
    for setting in settings:
        name, _, value = setting.partition("=")
        section, _, key = name.strip().rpartition(".")
        if not section or not key or not value:
            raise SystemExit(f"--setting {setting!r}: write section.key=value")
        by_section.setdefault(section, []).append(f"{key} = {value.strip()}")
    out: list[str] = []
    for line in lines:
        out.append(line)
        if line.startswith("[") and not line.startswith("[["):
            out += by_section.pop(line.strip("[]"), [])
    for section, entries in by_section.items():
        out += [f"[{section}]", *entries]
    return out


async def _wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(1200):  # a minute: workers start slowly on a busy machine
            if process.poll() is not None:
                raise SystemExit("gateway exited during start-up")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url + "/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise SystemExit("gateway did not become healthy")


PROOFS_PER_SECOND = 3000
"""DPoP proofs made before each timed run, per second of it: more than the gateway serves
here (~1,100 hits/s), so signing stays off the load generator's clock and no proof is sent
twice (a proof sent again is refused as replayed: 401, counted as an error)."""


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




def _counters(url: str) -> dict[str, float | None]:
    """The gateway's Redis round trips, audit commits and cache lookups (all, and misses)
    so far, from /metrics (None if absent or unreadable)."""
    import urllib.request

    try:
        with urllib.request.urlopen(url + "/metrics", timeout=10) as response:  # noqa: S310
            text = response.read().decode()
    except OSError:
        return {ROUND_TRIPS: None, AUDIT_COMMITS: None, CACHE_LOOKUPS: None, CACHE_MISSES: None}
    return {**{name: counter_total(text, name)
               for name in (ROUND_TRIPS, AUDIT_COMMITS, CACHE_LOOKUPS)},
            CACHE_MISSES: counter_total(text, CACHE_LOOKUPS, 'result="miss"') or 0.0}


def _per_request(before: dict[str, float | None], after: dict[str, float | None], name: str,
                 requests: int) -> float | None:
    low, high = before.get(name), after.get(name)
    return None if low is None or high is None or not requests else round(
        (high - low) / requests, 2)


def _share(before: dict[str, float | None], after: dict[str, float | None]) -> float | None:
    first, last = before.get(CACHE_LOOKUPS), after.get(CACHE_LOOKUPS)
    missed, misses = before.get(CACHE_MISSES), after.get(CACHE_MISSES)
    if first is None or last is None or missed is None or misses is None or last == first:
        return None
    return round((misses - missed) / (last - first), 3)


class Probe:
    """The gateway's counters at the start and end of a timed run (and py-spy during it)."""

    def __init__(self, variant: Variant, profile_seconds: float | None, seconds: float,
                 load_cpus: set[int], *, count_calls: bool = False) -> None:
        self.variant = variant
        self.calls_output = variant.workdir / "calls.prof" if count_calls else None
        self.instructions = variant.args.instructions
        self.load_cpus = load_cpus
        self.load_before: float | None = None
        self.profile_seconds = None if not profile_seconds else max(
            1, int(min(profile_seconds, seconds)))
        self.spy: subprocess.Popen[bytes] | None = None
        self.spy_output = variant.workdir / f"py-spy-{secrets.token_hex(3)}.txt"
        self.counters_before: dict[str, float | None] = {}
        self.cpu_before: dict[int, float] = {}
        self.cpus_before: float | None = None
        self.started: float | None = None

    def start(self) -> None:
        """Just before the load starts (synchronous: the Python client calls it from a thread)."""
        self.counters_before = _counters(self.variant.url)
        if self.profile_seconds:
            # --gil: only the thread holding the GIL, i.e. Python running; without it py-spy
            # here also counts threads blocked in C (the event loop in epoll, the log writer
            # on its queue, SQLite's fsync), which its idle detection does not catch.
            command = [str(PY_SPY), "record", "--format", "raw", "--rate", str(PROFILE_RATE),
                       "--pid", str(self.variant.pid), "--duration", str(self.profile_seconds),
                       "--output", str(self.spy_output),
                       *(["--gil"] if self.variant.args.profile_threads == "gil" else [])]
            if self.variant.args.workers > 1:
                command.append("--subprocesses")
            self.spy = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        if self.calls_output is not None:
            self.calls_output.unlink(missing_ok=True)
            os.kill(self.variant.pid, callcount.START)
        if self.instructions:
            instructions.start(self.variant.pid, self.variant.workdir)
        self.cpu_before = procs.cpu_snapshot(self.variant.pid)
        self.cpus_before = procs.cpus_busy_seconds(self.variant.cpus)
        self.load_before = procs.cpus_busy_seconds(self.load_cpus)
        self.started = time.perf_counter()

    def stop(self, requests: int) -> dict[str, Any]:
        """Right after the load: CPU ms and Redis round trips per request, RSS."""
        cpu = procs.cpu_spent(self.cpu_before, procs.cpu_snapshot(self.variant.pid))
        cpus_after = procs.cpus_busy_seconds(self.variant.cpus)
        load_after = procs.cpus_busy_seconds(self.load_cpus)
        others = (None if cpu is None or cpus_after is None or self.cpus_before is None
                  else max(0.0, cpus_after - self.cpus_before - cpu))
        wall = time.perf_counter() - (self.started or time.perf_counter())
        counters = _counters(self.variant.url)
        if self.calls_output is not None:
            os.kill(self.variant.pid, callcount.STOP)  # after the CPU: writing is not the run's
        counted = (instructions.dump(self.variant.pid, self.variant.workdir)
                   if self.instructions else None)
        return {"gateway_cpu_ms_per_req": None if cpu is None or not requests
                else round(cpu * 1000 / requests, 3),
                "redis_round_trips_per_req": _per_request(self.counters_before, counters,
                                                          ROUND_TRIPS, requests),
                # of the cache entries the run looked up, the share found missing or
                # expired: near 0 in a cache-hit run, near 1 in a cache-miss run
                "cache_miss_share": _share(self.counters_before, counters),
                # transactions in the audit store (group commit: well under 1 under load)
                "audit_commits_per_req": _per_request(self.counters_before, counters,
                                                      AUDIT_COMMITS, requests),
                # CPUs' worth the gateway used over the run (1.0: one CPU saturated)
                "gateway_cpus_busy": None if cpu is None or wall <= 0 else round(cpu / wall, 2),
                # CPUs' worth that everything else used on the gateway's CPUs (a shared
                # machine; the load generator is pinned elsewhere): well above 0, the
                # gateway was kept waiting and its latency and requests/s say so
                "others_on_gateway_cpus": None if others is None or wall <= 0
                else round(others / wall, 2),
                # CPUs' worth used on the load CPUs (simulators, load generator, this
                # process, anything else): near their count, the latencies measured are
                # the load side's as much as the gateway's
                "load_cpus_busy": None if load_after is None or self.load_before is None
                or wall <= 0 else round((load_after - self.load_before) / wall, 2),
                # user-space instructions of all the gateway's threads (`--instructions`)
                **({} if not self.instructions else {"instructions_per_req": None
                    if counted is None or not requests else round(counted / requests)}),
                **procs.rss(self.variant.pid)}

    def calls(self, name: str, requests: int) -> dict[str, Any] | None:
        """Python calls per request over the run (`--count-calls`, see `bench.callcount`)."""
        output = self.calls_output
        if output is None:
            return None
        line: dict[str, Any] = {"calls": name, "variant": self.variant.name}
        if not callcount.wait_for(output):
            return {**line, "error": "the gateway wrote no counts"}
        kept = output.with_name(f"calls-{secrets.token_hex(3)}.prof")
        output.replace(kept)
        return {**line, **callcount.summary(kept, requests)}

    def profile(self, name: str, req_per_s: float,
                cpu_ms_per_req: float | None) -> dict[str, Any] | None:
        """py-spy's samples by layer (self time), once it has finished: each layer's share,
        and that share of the run's measured CPU ms per request."""
        if self.spy is None or self.profile_seconds is None:
            return None
        try:
            _, stderr = self.spy.communicate(timeout=self.profile_seconds + 30)
        except subprocess.TimeoutExpired:
            self.spy.kill()
            _, stderr = self.spy.communicate()
        if not self.spy_output.exists():
            return {"profile": name, "variant": self.variant.name,
                    "error": stderr.decode(errors="replace")[-500:]}
        with self.spy_output.open(encoding="utf-8", errors="replace") as lines:
            layers, counted, idle = layer_summary(lines)
        requests = req_per_s * self.profile_seconds
        return {"profile": name, "variant": self.variant.name,
                "seconds": self.profile_seconds, "samples": counted, "idle_excluded": idle,
                "threads": self.variant.args.profile_threads,
                "sampled_ms_per_req": round(counted / PROFILE_RATE * 1000 / requests, 3)
                if requests else None, "cpu_ms_per_req": cpu_ms_per_req,
                "raw": str(self.spy_output),
                "layers": [{"layer": layer, "pct": round(100 * n / counted, 1),
                            "ms_per_req": None if cpu_ms_per_req is None
                            else round(cpu_ms_per_req * n / counted, 3)}
                           for layer, n in layers.most_common()] if counted else []}


@dataclass
class Context:
    args: argparse.Namespace
    ids: Ids
    load: str
    wrk: str | None
    load_cpus: set[int]
    wrk_threads: int
    processes: int
    results: list[dict[str, Any]] = field(default_factory=list)


def _emit(ctx: Context, line: dict[str, Any] | None) -> None:
    if line is not None:
        print(json.dumps(line), flush=True)
        if "run" in line and line.get("purpose") != "capacity":
            ctx.results.append(line)


def _figures(name: str, variant: Variant, round_: int, load: str, *, requests: int,
             errors: int, seconds: float, p50: float, p95: float, p99: float, mean: float,
             measures: dict[str, Any], latency_ms: float) -> dict[str, Any]:
    return {"run": name, "variant": variant.name, "round": round_, "load": load,
            "requests": requests, "req_per_s": round(requests / seconds, 1) if seconds else 0.0,
            "p50_ms": round(p50, 1), "p95_ms": round(p95, 1), "p99_ms": round(p99, 1),
            "mean_ms": round(mean, 1), "errors": errors,
            "gateway_cpu_ms_per_req": measures.pop("gateway_cpu_ms_per_req"),
            "redis_round_trips_per_req": measures.pop("redis_round_trips_per_req"),
            "p50_over_sim_latency": round(p50 / latency_ms, 3) if latency_ms else None,
            "p99_over_sim_latency": round(p99 / latency_ms, 3) if latency_ms else None,
            **measures, "loadavg_1m": round(os.getloadavg()[0], 2)}


def _py_figures(result: PyResult) -> dict[str, Any]:
    ordered = result.latencies
    ms = [x * 1000 for x in (percentile(ordered, 50), percentile(ordered, 95),
                             percentile(ordered, 99))]
    return {"requests": len(ordered), "errors": result.errors, "seconds": result.seconds,
            "p50": ms[0], "p95": ms[1], "p99": ms[2],
            "mean": statistics.fmean(ordered) * 1000 if ordered else 0.0}


def _specs(ctx: Context, variant: Variant, ids: list[str], proofs: list[str], clients: int,
           seconds: float, rate: float | None, *, keep_timeline: bool = False) -> list[LoadSpec]:
    count = max(1, min(ctx.processes, clients))
    jwk = None if variant.dpop_key is None else dict(variant.dpop_key.as_dict(private=True))
    return [LoadSpec(url=variant.url, token=variant.token, named=variant.named,
                     ids=ids[i::count] or ids, proofs=proofs[i::count],
                     dpop=variant.dpop_key is not None,
                     connections=clients // count + (1 if i < clients % count else 0),
                     seconds=seconds, rate=None if rate is None else rate / count,
                     cpus=ctx.load_cpus, dpop_jwk=jwk, timeline=keep_timeline)
            for i in range(count)]


def _make_proofs(variant: Variant, count: int) -> list[str]:
    if variant.dpop_key is None:
        return []
    return [make_proof(variant.dpop_key, "POST", variant.url + "/graphql", variant.token)
            for _ in range(count)]


async def _warm(variant: Variant, ids: list[str]) -> Run:
    """Every child of a cache-hit run's set once, just before it (cache entries live 30 s)."""
    return await _load(variant.url, variant.token, ids, 32, 60.0, "warm-up", limit=len(ids),
                       dpop_key=variant.dpop_key, document=variant.named)


async def _closed(ctx: Context, variant: Variant, kind: str, clients: int, round_: int,
                  purpose: str | None = None) -> dict[str, Any]:
    """A closed-loop run: `clients` connections, each sending when answered."""
    args = ctx.args
    name = f"cache-{kind} x{clients}"
    ids = ctx.ids.fresh_hot() if kind == "hit" else ctx.ids.take()
    if kind == "hit":
        await _warm(variant, ids)
    proofs = _make_proofs(variant, int(min(args.seconds, PROOF_AHEAD_SECONDS) * PROOFS_PER_SECOND))
    probe = Probe(variant, None if purpose else args.profile, args.seconds, ctx.load_cpus,
                  count_calls=args.count_calls and not purpose)
    extra: dict[str, Any] = {}
    # wrk cannot sign: beyond 45 s its proofs made ahead would be stale, so Python it is
    wrk_ok = variant.dpop_key is None or args.seconds <= PROOF_AHEAD_SECONDS
    if ctx.load == "wrk" and ctx.wrk is not None and wrk_ok:
        threads = max(1, min(ctx.wrk_threads, clients))
        ids_file = variant.workdir / "ids.txt"
        ids_file.write_text("\n".join(ids) + "\n", encoding="utf-8")
        proofs_file = None
        if proofs:
            proofs_file = variant.workdir / "proofs.txt"
            proofs_file.write_text("\n".join(proofs) + "\n", encoding="utf-8")
        script = variant.workdir / "bench.lua"
        script.write_text(lua_script(ids=ids_file, proofs=proofs_file, token=variant.token,
                                     dpop=variant.dpop_key is not None, named=variant.named,
                                     threads=threads), encoding="utf-8")
        probe.start()
        done: WrkResult = await asyncio.to_thread(run_wrk, ctx.wrk, variant.url, script,
                                                  connections=clients, threads=threads,
                                                  seconds=args.seconds)
        measures = probe.stop(done.requests)
        figures: dict[str, Any] = {
            "requests": done.requests, "errors": done.errors, "seconds": done.seconds,
            "p50": done.p50_ms, "p95": done.p95_ms, "p99": done.p99_ms, "mean": done.mean_ms}
        extra = {"wrk_threads": threads,
                 **({"ids_wrapped": True} if done.detail["wrapped"] and kind == "miss" else {}),
                 **({"proofs_reused": True} if done.detail["proofs_wrapped"] else {}),
                 **({"first_error": done.detail["first_error"]}
                    if "first_error" in done.detail else {})}
        load = "wrk"
    else:
        specs = _specs(ctx, variant, ids, proofs, clients, args.seconds, None)
        result = await asyncio.to_thread(run_processes, specs, probe.start)
        figures = _py_figures(result)
        measures = probe.stop(figures["requests"] + figures["errors"])
        extra = {"processes": len(specs),
                 **({"first_error": result.first_error} if result.first_error else {})}
        load = "python"
    if kind == "miss":
        ctx.ids.used(figures["requests"] + figures["errors"])
    line = {**_figures(name, variant, round_, load, requests=figures["requests"],
                       errors=figures["errors"], seconds=figures["seconds"], p50=figures["p50"],
                       p95=figures["p95"], p99=figures["p99"], mean=figures["mean"],
                       measures=measures, latency_ms=args.latency_ms), **extra}
    if purpose:
        line["purpose"] = purpose
    if probe.profile_seconds:
        line["profiled_seconds"] = probe.profile_seconds  # py-spy slows the gateway
    if probe.calls_output is not None:
        line["calls_counted"] = True  # cProfile slows the gateway too
    _emit(ctx, line)
    _emit(ctx, probe.profile(name, line["req_per_s"], line["gateway_cpu_ms_per_req"]))
    _emit(ctx, probe.calls(name, figures["requests"] + figures["errors"]))
    return line


async def _open(ctx: Context, variant: Variant, kind: str, clients: int, round_: int,
                rate: float) -> dict[str, Any]:
    """Open loop at `rate` requests/s (a soak if `--soak-seconds`), from the Python client."""
    args = ctx.args
    soak = args.soak_seconds
    seconds = soak or args.seconds
    name = f"cache-{kind} x{clients} @{rate:g}/s" + (" soak" if soak else "")
    ids = ctx.ids.fresh_hot() if kind == "hit" else ctx.ids.take()
    if kind == "hit":
        await _warm(variant, ids)
    # proofs are good for 60 s: made ahead for the first 45 s at most, then signed as sent
    proofs = _make_proofs(variant, int(rate * min(seconds, PROOF_AHEAD_SECONDS) * 1.05) + 100)
    probe = Probe(variant, args.profile, seconds, ctx.load_cpus, count_calls=args.count_calls)
    specs = _specs(ctx, variant, ids, proofs, clients, seconds, rate,
                   keep_timeline=args.timeline)
    samples: list[dict[str, Any]] = []
    samples_file = variant.workdir / f"soak-{kind}-x{clients}-r{round_}.jsonl"

    async def sample() -> None:
        with samples_file.open("a", encoding="utf-8") as out:
            while True:
                if probe.started is not None:
                    entry = {"t": round(time.perf_counter() - probe.started, 1),
                             **procs.rss(variant.pid)}
                    samples.append(entry)
                    out.write(json.dumps(entry) + "\n")
                    out.flush()
                    await asyncio.sleep(args.soak_sample_seconds)
                else:
                    await asyncio.sleep(0.1)

    cpu_samples: list[timeline.CpuSample] = []
    samplers = [asyncio.create_task(sample())] if soak else []
    if args.timeline:
        samplers.append(asyncio.create_task(timeline.sample_cpus(
            variant.pid, variant.cpus, ctx.load_cpus, cpu_samples)))
    try:
        result = await asyncio.to_thread(run_processes, specs, probe.start)
    finally:
        for sampler in samplers:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
    figures = _py_figures(result)
    measures = probe.stop(figures["requests"] + figures["errors"])
    if kind == "miss":
        ctx.ids.used(result.sent)
    line = {**_figures(name, variant, round_, "python", requests=figures["requests"],
                       errors=figures["errors"], seconds=figures["seconds"], p50=figures["p50"],
                       p95=figures["p95"], p99=figures["p99"], mean=figures["mean"],
                       measures=measures, latency_ms=args.latency_ms),
            "target_rate": round(rate, 1), "processes": len(specs),
            "client_late_ms_p99": result.late_ms_p99, "unfinished": result.unfinished,
            **({"first_error": result.first_error} if result.first_error else {})}
    if soak:
        end = {"t": round(time.perf_counter() - (probe.started or 0), 1),
               **procs.rss(variant.pid)}
        samples.append(end)
        with samples_file.open("a", encoding="utf-8") as out:
            out.write(json.dumps(end) + "\n")
        warmup = min(args.soak_warmup, soak / 2)
        after = next((s for s in samples if s["t"] >= warmup), samples[-1])
        line.update({"soak_seconds": soak, "rss_warmup_at_s": after["t"],
                     "rss_after_warmup_mib": after["gateway_rss_mib"],
                     "rss_end_mib": end["gateway_rss_mib"],
                     "rss_end_over_warmup": round(end["gateway_rss_mib"]
                                                  / after["gateway_rss_mib"], 3)
                     if after["gateway_rss_mib"] else None,
                     "rss_samples": str(samples_file)})
    if probe.profile_seconds:
        line["profiled_seconds"] = probe.profile_seconds
    if probe.calls_output is not None:
        line["calls_counted"] = True
    _emit(ctx, line)
    if args.timeline:
        _emit(ctx, _tail(variant, f"{kind}-x{clients}-r{round_}", name, round_,
                         result.timeline, cpu_samples, 2 * args.latency_ms))
    _emit(ctx, probe.profile(name, line["req_per_s"], line["gateway_cpu_ms_per_req"]))
    _emit(ctx, probe.calls(name, figures["requests"] + figures["errors"]))
    return line


def _tail(variant: Variant, stem: str, name: str, round_: int,
          requests: list[tuple[float, float | None]], samples: list[timeline.CpuSample],
          threshold_ms: float) -> dict[str, Any]:
    """`--timeline`: the run's requests and CPU samples to CSV, and its `"tail"` line."""
    cut = timeline.windows(requests, samples, threshold_ms)
    files = (variant.workdir / f"timeline-{stem}.csv", variant.workdir / f"windows-{stem}.csv")
    timeline.write_csv(requests, cut, *files)
    return timeline.tail_line(name, variant.name, round_, cut, threshold_ms, files)


async def _one(ctx: Context, variant: Variant, kind: str, clients: int, round_: int) -> None:
    args = ctx.args
    rate = args.rate
    if rate is None and args.capacity_fraction:
        capacity = await _closed(ctx, variant, kind, clients, round_, purpose="capacity")
        rate = capacity["req_per_s"] * args.capacity_fraction
    if rate:
        await _open(ctx, variant, kind, clients, round_, rate)
    else:
        await _closed(ctx, variant, kind, clients, round_)


def _summaries(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per configuration over the rounds: the median, min and max of the main figures."""
    keys = ("gateway_cpu_ms_per_req", "req_per_s", "p50_ms", "p99_ms",
            "redis_round_trips_per_req", "audit_commits_per_req", "gateway_rss_mib")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for line in results:
        groups.setdefault((line["variant"], line["run"]), []).append(line)
    out = []
    for (variant, run), lines in groups.items():
        summary: dict[str, Any] = {"summary": run, "variant": variant, "rounds": len(lines),
                                   "errors": sum(x["errors"] for x in lines)}
        for key in keys:
            values = [x[key] for x in lines if x.get(key) is not None]
            summary[key] = ({"median": round(statistics.median(values), 3),
                             "min": min(values), "max": max(values)} if values else None)
        out.append(summary)
    return out


async def _start_gateway(variant: Variant, urls: dict[str, str], jwks_url: str, id_secret: str,
                         stack: contextlib.AsyncExitStack, gateway_cpus: set[int],
                         hot: list[str], key: ECKey) -> None:
    args = variant.args
    pg_dsn = (await stack.enter_async_context(_bench_database(args.audit_server))
              if args.audit == "postgresql" else None)
    if args.systems:
        urls = {name: urls[name] for name in args.systems.split(",")}
    config = variant.workdir / "gateway.toml"
    _config(config, urls, jwks_url, id_secret,
            None if args.no_redis else args.redis_url, _audit_lines(args, variant.workdir, pg_dsn),
            _documents_lines(variant.workdir, args.trusted), prefix=f"bench{os.getpid()}-"
            f"{variant.port}:", processes=args.workers, settings=args.setting or ())
    variant.named = ({"documentId": f"sha256:{_sha256(QUERY)}"} if args.trusted
                     else {"query": QUERY})
    entry = (["bench.callcount", str(variant.workdir / "calls.prof")] if args.count_calls
             else ["gateway.web.cli"])
    command = [*(instructions.prefix(variant.workdir) if args.instructions else ()),
               sys.executable, "-m", *entry, "serve", "--config", str(config),
               "--port", str(variant.port), "--workers", str(args.workers)]
    log = variant.workdir / "gateway.log"
    with log.open("ab") as out:  # its logs (a line per request) stay off the bench's output
        variant.process = procs.spawn_pinned(command, gateway_cpus, stdout=out, stderr=out)
    variant.cpus = gateway_cpus
    try:
        await _wait_healthy(variant.url, variant.process)
    except SystemExit:
        sys.stderr.write(log.read_text(errors="replace")[-3000:])
        raise
    variant.dpop_key = ECKey.generate_key("P-256", private=True) if args.dpop else None
    variant.token = mint_dev_token(
        subject="bench-user", scopes=SCOPES, amr=["mfa"], roles=["bench"],
        organisation="bench-org", client_id=CLIENT, ttl_seconds=3600, key=key, issuer=ISSUER,
        audience=AUDIENCE, extra_claims=None if variant.dpop_key is None else {
            "cnf": {"jkt": variant.dpop_key.thumbprint()}})
    warm = await _warm(variant, hot)
    if not warm.latencies:
        raise SystemExit(f"gateway {variant.name}: every warm-up request failed")
    before = procs.cpu_snapshot(variant.pid)
    await asyncio.sleep(IDLE_SECONDS)  # what it spends with nothing to do (timers, pollers)
    idle = procs.cpu_spent(before, procs.cpu_snapshot(variant.pid))
    variant.idle_cpus_busy = None if idle is None else round(idle / IDLE_SECONDS, 3)


def _free_port() -> int:
    """A port nothing listens on now (so that two benches on one machine do not meet)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _variants(args: argparse.Namespace, parser: argparse.ArgumentParser,
              root: Path) -> list[Variant]:
    specs = [s.strip() for s in args.compare.split(";")] if args.compare else [""]
    variants = []
    for index, spec in enumerate(specs):
        extra = [] if spec in {"", "plain"} else shlex.split(spec)
        merged = parser.parse_args(extra, namespace=copy.copy(args))
        changed = {k for k, v in vars(merged).items() if vars(args)[k] != v} - PER_GATEWAY
        if changed:
            parser.error(f"--compare {spec!r}: not a per-gateway option: {sorted(changed)}")
        workdir = root / f"gateway-{index}"
        workdir.mkdir()
        port = _free_port() if args.port is None else args.port + index
        variants.append(Variant(spec or "plain", merged, port, workdir))
    return variants


async def main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    gateway_cpus, load_cpus = procs.load_split(args.load_cpus)
    procs.pin(0, load_cpus)  # this process, and so the simulators, wrk and the clients
    wrk = wrk_path()
    load = args.load or ("wrk" if wrk else "python")
    if load == "wrk" and wrk is None:
        raise SystemExit("--load wrk: wrk is not installed")
    population = Population.generate(seed=args.seed, size=args.children)
    key = ECKey.generate_key("P-256", {"kid": "bench-1", "use": "sig", "alg": "ES256"})
    root = Path(tempfile.mkdtemp(prefix="cpg-bench-"))
    variants = _variants(args, parser, root)
    stack = contextlib.AsyncExitStack()
    completed = False
    try:
        urls = stack.enter_context(upstreams.simulators(args.latency_ms, args.children,
                                                        args.seed))
        jwks_url = await stack.enter_async_context(upstreams.jwks_server(key))
        id_secret = secrets.token_hex(32)
        codec = ChildIdCodec(id_secret, 86_400)
        miss_ids = [codec.encode(nhs, CLIENT) for nhs in upstreams.servable(population)]
        ids = Ids(cold=miss_ids[: len(miss_ids) - args.hot], hot=miss_ids[-args.hot:])
        for variant in variants:
            await _start_gateway(variant, urls, jwks_url, id_secret, stack, gateway_cpus,
                                 ids.hot, key)
        clients = [int(n) for n in args.clients.split(",")]
        ctx = Context(args=args, ids=ids, load=load, wrk=wrk, load_cpus=load_cpus,
                      wrk_threads=len(load_cpus),
                      processes=args.load_processes or len(load_cpus))
        print(json.dumps({
            "clients": clients, "seconds": args.soak_seconds or args.seconds,
            "simulator_latency_ms": args.latency_ms, "load": load,
            "mode": "soak" if args.soak_seconds else "rate" if args.rate or
            args.capacity_fraction else "closed",
            "gateway_cpus": sorted(gateway_cpus), "load_cpus": sorted(load_cpus),
            "variants": [{"name": v.name, "port": v.port, "workers": v.args.workers,
                          "cache": "in-process" if v.args.no_redis else v.args.redis_url,
                          "audit": v.args.audit, "trusted_documents": v.args.trusted,
                          "dpop": v.args.dpop, "idle_cpus_busy": v.idle_cpus_busy}
                         for v in variants],
            "python": interpreter.describe(gateway_cpus),
            "repeat": args.repeat, "temp": str(root)}), flush=True)
        for round_ in range(1, args.repeat + 1):
            for variant in variants:
                for n in clients:
                    for kind in ("miss", "hit"):
                        if kind in args.runs:
                            await _one(ctx, variant, kind, n, round_)
        if ids.wrapped:
            _emit(ctx, {"note": "the cold children were used up and started again: "
                                "later cache-miss runs may have hit (entries live 30 s)"})
        if args.repeat > 1:
            for summary in _summaries(ctx.results):
                print(json.dumps(summary), flush=True)
        completed = True
    finally:
        for process in [v.process for v in variants]:
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
        await stack.aclose()  # the gateways' resources, the JWKS, the simulators
        tidy(root, args, completed=completed)


_NAMED_FILES = ("profile", "timeline", "soak_seconds", "count_calls", "instructions")
"""Options whose output names files in the temporary folder (raw profiles, timelines)."""


def tidy(root: Path, args: argparse.Namespace, *, completed: bool) -> None:
    """Leave behind only what the printed lines point at (see the module docstring);
    after a failed run, everything but the databases (the gateways' logs say why)."""
    if args.keep:
        return
    if completed and not any(getattr(args, name) for name in _NAMED_FILES):
        shutil.rmtree(root, ignore_errors=True)
        return
    for database in root.rglob("*.db*"):  # SQLite's own files: -wal, -shm
        database.unlink(missing_ok=True)
    if not completed:
        print(f"bench: the run did not complete; the gateways' files are in {root}",
              file=sys.stderr)


def add_simulator_options(parser: argparse.ArgumentParser) -> None:
    """The simulators' latency and population: `bench.peer` takes the same, with the same
    defaults, so that its runs and the bench's ask the same children of the same systems."""
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--children", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2026)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="1,32",
                        help="comma-separated concurrencies (connections)")
    parser.add_argument("--seconds", type=float, default=15.0)
    add_simulator_options(parser)
    parser.add_argument("--hot", type=int, default=200,
                        help="children in a cache-hit run's set (fresh ones each run)")
    parser.add_argument("--port", type=int, default=None,
                        help="the gateway's port (the n-th --compare variant: port + n; "
                             "default: a free one each)")
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
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="contactpoint serve --workers N (all pinned to the gateway CPUs)")
    parser.add_argument("--load", choices=["wrk", "python"], default=None,
                        help="load generator for closed-loop runs (default: wrk if installed)")
    parser.add_argument("--load-cpus", type=int, default=None, metavar="N",
                        help="CPUs for the load generator and simulators: the last N (default "
                             "half, at least 1); the gateway gets the others")
    parser.add_argument("--load-processes", type=int, default=None, metavar="P",
                        help="Python client processes (default: one per load CPU)")
    parser.add_argument("--rate", type=float, default=None, metavar="R",
                        help="open loop at R requests/s (Python client; latency from each "
                             "request's intended send time)")
    parser.add_argument("--capacity-fraction", type=float, default=None, metavar="F",
                        help="without --rate: a closed-loop run first, then open loop at F "
                             "times its requests/s (e.g. 0.7)")
    parser.add_argument("--soak-seconds", type=float, default=None, metavar="S",
                        help="with --rate or --capacity-fraction: one open-loop run of S "
                             "seconds, sampling the gateway's RSS")
    parser.add_argument("--timeline", action="store_true",
                        help="open loop: keep each request's send time and latency, sample "
                             "the CPUs every 100 ms, and print where the requests over 2 x "
                             "the simulator latency were (a \"tail\" line; bench/timeline.py)")
    parser.add_argument("--soak-warmup", type=float, default=60.0, metavar="S",
                        help="soak: RSS after this many seconds is the baseline (default 60)")
    parser.add_argument("--soak-sample-seconds", type=float, default=10.0, metavar="S")
    parser.add_argument("--profile", type=float, default=None, metavar="SECONDS",
                        help="py-spy the gateway for the first SECONDS of each timed run and "
                             "print self time by layer")
    parser.add_argument("--count-calls", action="store_true",
                        help="count the gateway's Python calls per request in each timed run "
                             "(cProfile; one process: not with --workers N)")
    parser.add_argument("--instructions", action="store_true",
                        help="run the gateway under valgrind's callgrind and report its "
                             "instructions per request in each timed run (bench/instructions.py;"
                             " slow: give a low --rate)")
    parser.add_argument("--profile-threads", choices=["gil", "all"], default="gil",
                        help="gil: sample the thread holding the GIL (Python CPU; default); "
                             "all: every thread py-spy thinks busy (waits in C included)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder whole (each gateway's configuration, "
                             "log and databases); by default it is removed at the end")
    parser.add_argument("--repeat", type=int, default=1, metavar="K",
                        help="K interleaved rounds of every configuration, then medians")
    parser.add_argument("--setting", action="append", metavar="SECTION.KEY=VALUE",
                        help="a gateway setting (a TOML value), e.g. "
                        "limits.execution_plans=false; repeatable; per --compare variant")
    parser.add_argument("--compare", default=None, metavar='"A;B"',
                        help='gateway configurations run alternately, each its own gateway, '
                             'as extra options: e.g. "plain;--dpop" or '
                             '"--workers 1;--workers 2" (per-gateway options only: --dpop, '
                             "--trusted, --audit, --no-redis, --workers, --systems)")
    return parser


if __name__ == "__main__":
    _PARSER = _parser()
    _ARGS = _PARSER.parse_args()
    if _ARGS.soak_seconds and not (_ARGS.rate or _ARGS.capacity_fraction):
        _PARSER.error("--soak-seconds needs --rate or --capacity-fraction")
    if _ARGS.timeline and not (_ARGS.rate or _ARGS.capacity_fraction):
        _PARSER.error("--timeline is for open-loop runs: give --rate or --capacity-fraction")
    if _ARGS.count_calls and (_ARGS.workers > 1 or "--workers" in (_ARGS.compare or "")):
        _PARSER.error("--count-calls counts one process: not with --workers")
    if _ARGS.instructions and (_ARGS.workers > 1 or "--workers" in (_ARGS.compare or "")):
        _PARSER.error("--instructions counts one process: not with --workers")
    if _ARGS.instructions and (_ARGS.count_calls or _ARGS.profile):
        _PARSER.error("--instructions alone: not with --count-calls or --profile")
    if _ARGS.instructions and not instructions.available():
        _PARSER.error("--instructions needs valgrind (Debian's package valgrind)")
    asyncio.run(main(_ARGS, _PARSER))
