"""Peer comparison: Hive Gateway (The Guild) doing the work of the bench's cache-miss run.

    (cd bench/peers/hive && npm ci)   # once; the bench runs it itself if node_modules is absent
    .venv/bin/python -m bench.peer --clients 32 --seconds 10 --repeat 3

Measures Hive Gateway's **CPU milliseconds per request** on this machine, as `python -m
bench` measures ours, so that the two can be read side by side. It starts, as the bench
does, the four simulated systems (`python -m connectors.simulators`, same `--latency-ms`,
`--children`, `--seed`) and a JWKS with an ES256 key; composes a supergraph of the four
systems with Mesh Compose (bench/peers/hive/mesh.config.ts, OpenAPI descriptions in
bench/peers/hive/openapi/) against the URLs the simulators announce; starts Hive Gateway
(bench/peers/hive/gateway.config.ts, `NODE_ENV=production`, one process) pinned to the
gateway's CPUs (`bench.procs.load_split`: on two CPUs, the gateway on CPU 0, the rest on
CPU 1); and then, per round and concurrency, a closed-loop wrk run of `--seconds` with a
different child per request, cycling through the children the bench's cache-miss run
uses (under 18, not a fixture, not the last `--hot`), one wrk thread per load CPU.

Before the timed runs, and printed in the header line:

- `upstream_calls_per_req`: a separate gateway, the same but for a plugin that counts
  its upstream fetches by path (`PEER_COUNT_UPSTREAM=1`), answers `COUNT_REQUESTS`
  children one at a time; its counts ÷ requests. Expected: one `GET /Patient`, one
  `GET /api/v1/pupils`, one `GET /api/children`, one `GET /yj/v2/young-people`. With
  them `one_at_a_time_p50_ms`, those requests' median latency: near one simulator
  latency if the four calls overlap, four if they ran one after another.
- `auth_refusals`: the HTTP status of a request with no token, a token signed by a key
  not in the JWKS, a wrong audience, a wrong issuer, and an expired token (all 401, or
  the bench stops).
- `sample_answer`: one full answer, for a child all four systems know; and
  `answers_checked`: every warm-up answer (`--warmup` requests, 32 at a time, over the
  `--hot` children) is checked against the synthetic population: 200, no `errors`, and
  each system's record of the child where that system knows the child (its NHS
  number, and the practice or school it holds), an empty list where not.
- `idle_cpus_busy`: CPUs' worth Hive spends over 2 s with nothing to do, after the
  warm-up (as the bench's header reports for ours).

During a timed run a request is an error if it is not answered 200 or its body has
`"errors"` (wrk's `response()` hook, as in the bench), or on a socket error.

**What one request does.** Ours (`bench/__main__.py` QUERY, a cache miss): one call to each
system for the child, four in all, in parallel: GP `GET /Patient?identifier=
https://fhir.nhs.uk/Id/nhs-number|{nhs}&_include=Patient:general-practitioner` (the
practice comes in the same answer), school `GET /api/v1/pupils?nhs_number=`, council
`GET /api/children?nhsNumber=`, youth justice `GET /yj/v2/young-people?nhs=`
(`connectors/fhir_r4.py`, `connectors/rest_json.py` and the manifests; counted once at
the simulators' own per-route counters: 20 cache-miss requests to our gateway made
exactly 20 of each of these and nothing else). Hive (QUERY below): the same four GETs,
as four root fields of one operation, which it runs concurrently; no call depends on
another (the practice is an `_include`d entry of the GP's Bundle, so no
`/Organization/{id}` read). The client sends the NHS number (`$nhs`) and the GP's
identifier token (`$identifier`, `system|nhs`). It selects the fields that feed ours:
name, date of birth, gender, home address, carers (school contacts), school, practice
(name, code, phone) and services (council involvements, youth justice orders), plus the
shielding flags, as each system states them: four records side by side, not one child.

**What Hive does that ours does:** parse, validate and execute a GraphQL document sent in
full with each request; verify the bearer JWT on every request (ES256 signature against
a key from the remote JWKS, fetched once and cached; issuer, audience, expiry); four
upstream HTTP calls over kept-alive connections; parse four JSON answers; serialise
the answer.

**What Hive does not do, that ours does:** no disclosure policy (scopes, purpose, roles,
shielding, sensitive services), no merging or matching of the four records into one
child, no cache (on a miss ours looks each system's answer up in Redis, then stores it,
sealed), no audit (ours records every disclosure, SQLite by default), no budgets
or rate limits, no opaque child ids (the client sends the NHS number itself; ours
decrypts an id bound to the client), no circuit breakers, retries, per-system
timeouts or concurrency caps, no persisted/trusted documents, no Prometheus metrics,
no log line per request (Hive logs errors only). Hive's own defaults stay on
(request ids, error masking, supergraph polling every 10 s).

Prints JSON lines: a header (versions, the checks above), one line per run with the
bench's field names (`requests`, `req_per_s`, `p50_ms`, `p95_ms`, `p99_ms`, `mean_ms`,
`errors`, `gateway_cpu_ms_per_req`: utime + stime from /proc of the Hive process and any
children over the run ÷ requests; `gateway_rss_mib`, `gateway_cpus_busy`,
`others_on_gateway_cpus`, `load_cpus_busy`) plus `hive_gateway` and `node` versions,
and with `--repeat` K > 1 the bench's medians. The temporary folder (supergraph,
gateway logs, wrk script) is removed at the end unless `--keep` or a failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from joserfc.jwk import ECKey

from bench import procs
from bench.__main__ import (
    AUDIENCE,
    CLIENT,
    IDLE_SECONDS,
    ISSUER,
    SCOPES,
    Ids,
    _free_port,
    _summaries,
    add_simulator_options,
)
from bench.upstreams import jwks_server, servable, simulators
from bench.wrkload import MARK, body_script, run_wrk, wrk_path
from connectors.fhir import INCLUDE_PRACTICE, NHS_NUMBER_SYSTEM
from connectors.simulators import Population
from gateway.auth.devissuer import mint_dev_token

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bench.wrkload import WrkResult
    from connectors.simulators.records import Child, System

HIVE_DIR = Path(__file__).resolve().parent / "peers" / "hive"
SYSTEMS: tuple[System, ...] = ("gp", "school", "council", "youth_justice")
URL_VARIABLES = {"gp": "GP_URL", "school": "SCHOOL_URL", "council": "COUNCIL_URL",
                 "youth_justice": "YOUTH_JUSTICE_URL"}
"""The environment variables mesh.config.ts reads each system's base URL from."""
PACKAGES = ("@graphql-hive/gateway", "@graphql-hive/gateway-runtime",
            "@graphql-mesh/compose-cli", "@omnigraph/openapi", "@graphql-mesh/transport-rest",
            "@graphql-mesh/plugin-jwt-auth", "@graphql-yoga/plugin-jwt", "graphql")
"""The installed versions the header reports (package-lock.json pins them all)."""
COUNTS_PATH = "/_peer/upstream-calls"
COUNT_REQUESTS = 20
WARM_CLIENTS = 32
READY_SECONDS = 60.0

QUERY = f"""query Child($nhs: String!, $identifier: String!) {{
  gp: gpPatients(identifier: $identifier, _include: "{INCLUDE_PRACTICE}") {{
    entry {{
      search {{ mode }}
      resource {{
        ... on GpPatient {{
          identifier {{ system value }} name {{ use given family }} birthDate gender
          address {{ use line city postalCode }} generalPractitioner {{ reference }}
        }}
        ... on GpOrganization {{
          id practiceName: name identifier {{ system value }} telecom {{ system value }}
        }}
      }}
    }}
  }}
  school: schoolPupils(nhs_number: $nhs) {{
    pupils {{
      nhs_number legal_forename middle_names legal_surname date_of_birth gender
      school {{ urn name }}
      contacts {{ forename surname relationship phone address {{ postcode }} }}
    }}
  }}
  council: councilChildren(nhsNumber: $nhs) {{
    results {{
      nhsNumber forenames surname dateOfBirth shielded
      address {{ line1 line2 town postcode }}
      involvements {{ type service sensitive contact }}
    }}
  }}
  youthJustice: youthJusticeYoungPeople(nhs: $nhs) {{
    data {{
      youngPeople {{
        nhs_no name {{ first middle last }} dob restricted
        orders {{ programme category sensitive worker_phone }}
      }}
    }}
  }}
}}"""
"""The same four upstream calls as our cache miss, and the fields that feed our answer."""


def variables(nhs: str) -> dict[str, str]:
    """The operation's variables for one child."""
    return {"nhs": nhs, "identifier": f"{NHS_NUMBER_SYSTEM}|{nhs}"}


def request_body(query: str, nhs: str) -> str:
    """The request body asking `query` about the child with NHS number `nhs`."""
    return json.dumps({"query": query, "variables": variables(nhs)}, separators=(",", ":"))


def lua_script(*, ids: Path, token: str, query: str, threads: int) -> str:
    """The wrk script for one run (`bench.wrkload`'s, without DPoP): POST `query` for the
    NHS numbers in `ids`, in turn."""
    return body_script(ids=ids, proofs=None, token=token, dpop=False,
                       body=request_body(query, MARK), threads=threads)


def answer_problems(status: int, payload: object, child: Child) -> list[str]:
    """What is wrong with one answer about `child` (empty: nothing): each system's record
    of the child where it knows the child, an empty list where it does not."""
    if status != 200:
        return [f"status {status}"]
    if not isinstance(payload, dict) or payload.get("errors") or not payload.get("data"):
        return [f"errors: {json.dumps(payload)[:300]}"]
    data = payload["data"]
    nhs = child.nhs_number
    try:
        found = {"gp": _gp(data["gp"], child), "school": _school(data["school"], child),
                 "council": _council(data["council"], nhs),
                 "youth_justice": _youth_justice(data["youthJustice"], nhs)}
    except (KeyError, TypeError, IndexError) as exc:
        return [f"unexpected shape: {exc!r}"]
    return [f"{system}: {'record missing' if child.known_to(system) else 'record unexpected'}"
            for system in SYSTEMS if found[system] != child.known_to(system)]


def _gp(answer: dict[str, Any], child: Child) -> bool:
    """Whether the GP's Bundle holds the child (and the practice, included)."""
    entries = answer["entry"] or []
    values = {i["value"] for e in entries for i in e["resource"].get("identifier") or []}
    practices = {e["resource"].get("id") for e in entries if e["search"]["mode"] == "include"}
    holds = child.nhs_number in values
    return holds and (child.practice is None or child.practice.code in practices)


def _school(answer: dict[str, Any], child: Child) -> bool:
    pupils = answer["pupils"]
    if not pupils:
        return False
    school = pupils[0]["school"]
    return (pupils[0]["nhs_number"] == child.nhs_number and child.school is not None
            and school["urn"] == child.school.urn)


def _council(answer: dict[str, Any], nhs: str) -> bool:
    results = answer["results"]
    return bool(results) and results[0]["nhsNumber"] == nhs


def _youth_justice(answer: dict[str, Any], nhs: str) -> bool:
    people = answer["data"]["youngPeople"]
    return bool(people) and people[0]["nhs_no"] == nhs


def per_request(counts: dict[str, int], requests: int) -> dict[str, float]:
    """Upstream calls by path ÷ requests."""
    return {path: round(n / requests, 2) for path, n in sorted(counts.items())}


# --- the Node project ---------------------------------------------------------------------


def package_versions(root: Path = HIVE_DIR) -> dict[str, str | None]:
    """The installed version of each of `PACKAGES` (None where it is not installed)."""
    versions: dict[str, str | None] = {}
    for package in PACKAGES:
        manifest = root / "node_modules" / package / "package.json"
        try:
            versions[package] = json.loads(manifest.read_text(encoding="utf-8"))["version"]
        except (OSError, ValueError, KeyError):
            versions[package] = None
    return versions


def _bin(root: Path, package: str, name: str) -> Path:
    """The script of `package`'s command `name`, from its package.json."""
    folder = root / "node_modules" / package
    manifest = json.loads((folder / "package.json").read_text(encoding="utf-8"))
    script: str = manifest["bin"][name]
    return (folder / script).resolve()


def _node() -> str:
    found = shutil.which("node")
    if found is None:
        raise SystemExit("node is not installed (Node 20 or later)")
    return found


def ensure_installed(root: Path = HIVE_DIR) -> None:
    """`npm ci` in the Node project if its packages are not installed."""
    if (root / "node_modules" / "@graphql-hive" / "gateway").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit(f"{root}: no node_modules, and npm is not installed")
    print(f"bench.peer: npm ci in {root}", file=sys.stderr)
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=root, check=True,
                   stdout=sys.stderr)


def compose(node: str, root: Path, urls: dict[str, str], output: Path) -> None:
    """Mesh Compose against the simulators at `urls`, writing the supergraph to `output`."""
    command = [node, str(_bin(root, "@graphql-mesh/compose-cli", "mesh-compose")),
               "--config-path", str(root / "mesh.config.ts"), "--output", str(output)]
    settings = {URL_VARIABLES[name]: urls[name] for name in SYSTEMS}
    done = subprocess.run(command, cwd=root, env={**os.environ, **settings},
                          capture_output=True, text=True, check=False)
    if done.returncode != 0 or not output.exists():
        raise SystemExit(f"mesh-compose failed ({done.returncode}):\n{done.stderr[-3000:]}")


def gateway_command(node: str, root: Path, port: int) -> list[str]:
    """Hive Gateway, one process, on 127.0.0.1:`port` (configured by `gateway_settings`)."""
    return [node, str(_bin(root, "@graphql-hive/gateway", "hive-gateway")),
            "supergraph", "--config-path", str(root / "gateway.config.ts"),
            "--host", "127.0.0.1", "--port", str(port), "--fork", "1"]


def gateway_settings(supergraph: Path, jwks_url: str, *,
                     count_upstream: bool = False) -> dict[str, str]:
    """The environment gateway.config.ts reads: production mode, the supergraph, the JWT
    checks, and the counting plugin only for the counting gateway."""
    return {"NODE_ENV": "production", "SUPERGRAPH_PATH": str(supergraph),
            "JWKS_URL": jwks_url, "JWT_ISSUER": ISSUER, "JWT_AUDIENCE": AUDIENCE,
            **({"PEER_COUNT_UPSTREAM": "1"} if count_upstream else {})}


def node_version(node: str) -> str:
    return subprocess.run([node, "--version"], capture_output=True, text=True,
                          check=True).stdout.strip()


# --- the gateway --------------------------------------------------------------------------


@dataclass
class Hive:
    """One running Hive Gateway."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass(frozen=True)
class Launcher:
    """Starts Hive Gateways on one supergraph and JWKS, pinned to `cpus`, logs in `workdir`."""

    node: str
    root: Path
    supergraph: Path
    jwks_url: str
    workdir: Path
    cpus: set[int]

    def start(self, name: str, *, port: int | None = None,
              count_upstream: bool = False) -> Hive:
        port = port or _free_port()
        command = gateway_command(self.node, self.root, port)
        settings = gateway_settings(self.supergraph, self.jwks_url,
                                    count_upstream=count_upstream)
        log = self.workdir / f"{name}.log"
        with log.open("ab") as out:
            process = procs.spawn_pinned(command, self.cpus, stdout=out, stderr=out,
                                         env={**os.environ, **settings})
        return Hive(process, port, log)


async def wait_ready(hive: Hive, session: aiohttp.ClientSession, token: str, nhs: str) -> None:
    """Until Hive answers the query for `nhs` with data: the supergraph loaded, the JWKS read."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if hive.process.poll() is not None:
            raise SystemExit(f"hive gateway exited during start-up:\n{_tail(hive.log)}")
        with contextlib.suppress(aiohttp.ClientError, ValueError):
            status, payload = await ask(session, hive.url, token, nhs)
            if status == 200 and payload.get("data"):
                return
        await asyncio.sleep(0.2)
    raise SystemExit(f"hive gateway did not become ready:\n{_tail(hive.log)}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else ""


async def ask(session: aiohttp.ClientSession, url: str, token: str | None,
              nhs: str) -> tuple[int, Any]:
    """POST the query for one child; (status, decoded body or None)."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with session.post(url + "/graphql", data=request_body(QUERY, nhs),
                            headers=headers) as response:
        try:
            payload = await response.json(content_type=None)
        except ValueError:
            payload = None
        return response.status, payload


def tokens(key: ECKey) -> dict[str, str]:
    """The bench's token (`good`), and tokens Hive must refuse, each for one reason."""
    now = time.time()

    def mint(signer: ECKey = key, issuer: str = ISSUER, audience: str = AUDIENCE,
             at: float = now) -> str:
        return mint_dev_token(subject="bench-user", scopes=SCOPES, amr=["mfa"], roles=["bench"],
                              organisation="bench-org", client_id=CLIENT, ttl_seconds=3600,
                              key=signer, issuer=issuer, audience=audience, now=at)

    stranger = ECKey.generate_key("P-256", {"kid": "bench-1", "use": "sig", "alg": "ES256"})
    return {"good": mint(), "foreign_key": mint(signer=stranger),
            "wrong_audience": mint(audience=AUDIENCE + "-other"),
            "wrong_issuer": mint(issuer=ISSUER + "/other"), "expired": mint(at=now - 7200)}


async def auth_refusals(session: aiohttp.ClientSession, url: str, minted: dict[str, str],
                        nhs: str) -> dict[str, int]:
    """The status of a request with no token and with each token that must be refused."""
    statuses = {"no_token": (await ask(session, url, None, nhs))[0]}
    for name, token in minted.items():
        if name != "good":
            statuses[name] = (await ask(session, url, token, nhs))[0]
    accepted = [name for name, status in statuses.items() if status == 200]
    if accepted:
        raise SystemExit(f"hive gateway accepted requests it must refuse: {accepted}")
    return statuses


async def count_upstream(session: aiohttp.ClientSession, hive: Hive, token: str,
                         children: Sequence[str]) -> dict[str, Any]:
    """Upstream calls per request by path, and the median latency, asking for `children`
    one at a time (the counting gateway)."""
    async with session.get(hive.url + COUNTS_PATH) as response:
        before: dict[str, int] = await response.json()
    latencies = []
    for nhs in children:
        started = time.perf_counter()
        status, payload = await ask(session, hive.url, token, nhs)
        latencies.append(time.perf_counter() - started)
        if status != 200 or payload.get("errors"):
            raise SystemExit(f"counting gateway: {status} {json.dumps(payload)[:300]}")
    async with session.get(hive.url + COUNTS_PATH) as response:
        after: dict[str, int] = await response.json()
    spent = {path: n - before.get(path, 0) for path, n in after.items() if n != before.get(path)}
    return {"upstream_calls_per_req": per_request(spent, len(children)),
            "one_at_a_time_p50_ms": round(statistics.median(latencies) * 1000, 1)}


async def warm_up(url: str, token: str, children: list[Child], requests: int,
                  clients: int) -> tuple[int, list[str]]:
    """`requests` over `children`, `clients` at a time, each answer checked: (checked,
    the first problems found)."""
    problems: list[str] = []
    cursor = 0
    connector = aiohttp.TCPConnector(limit=clients)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal cursor
        while cursor < requests:
            child = children[cursor % len(children)]
            cursor += 1
            try:
                status, payload = await ask(session, url, token, child.nhs_number)
            except aiohttp.ClientError as exc:
                status, payload = 0, repr(exc)
            found = answer_problems(status, payload, child)
            if found and len(problems) < 10:
                problems.append(f"{child.nhs_number}: {'; '.join(found)}")

    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(clients)))
    return cursor, problems


# --- the timed run ------------------------------------------------------------------------


@dataclass
class Marks:
    """CPU counters at the start of a timed run."""

    cpu: dict[int, float]
    gateway_busy: float | None
    load_busy: float | None
    started: float


def mark(pid: int, gateway_cpus: set[int], load_cpus: set[int]) -> Marks:
    return Marks(procs.cpu_snapshot(pid), procs.cpus_busy_seconds(gateway_cpus),
                 procs.cpus_busy_seconds(load_cpus), time.perf_counter())


def measures(marks: Marks, pid: int, gateway_cpus: set[int], load_cpus: set[int],
             requests: int) -> dict[str, Any]:
    """The bench's CPU figures over the run (see `bench.__main__.Probe.stop`), and RSS."""
    cpu = procs.cpu_spent(marks.cpu, procs.cpu_snapshot(pid))
    gateway_busy = procs.cpus_busy_seconds(gateway_cpus)
    load_busy = procs.cpus_busy_seconds(load_cpus)
    wall = time.perf_counter() - marks.started
    others = (None if cpu is None or gateway_busy is None or marks.gateway_busy is None
              else max(0.0, gateway_busy - marks.gateway_busy - cpu))
    return {"gateway_cpu_ms_per_req": None if cpu is None or not requests
            else round(cpu * 1000 / requests, 3),
            "gateway_cpus_busy": None if cpu is None or wall <= 0 else round(cpu / wall, 2),
            "others_on_gateway_cpus": None if others is None or wall <= 0
            else round(others / wall, 2),
            "load_cpus_busy": None if load_busy is None or marks.load_busy is None
            or wall <= 0 else round((load_busy - marks.load_busy) / wall, 2),
            "gateway_rss_mib": procs.rss(pid)["gateway_rss_mib"]}


@dataclass
class Setting:
    """What every timed run shares."""

    args: argparse.Namespace
    hive: Hive
    token: str
    ids: Ids
    workdir: Path
    wrk: str
    gateway_cpus: set[int]
    load_cpus: set[int]
    versions: dict[str, Any]


def timed_run(setting: Setting, clients: int, round_: int) -> dict[str, Any]:
    """One closed-loop wrk run of `--seconds` at `clients` connections: its line."""
    threads = max(1, min(len(setting.load_cpus), clients))
    ids_file = setting.workdir / "ids.txt"
    ids_file.write_text("\n".join(setting.ids.take()) + "\n", encoding="utf-8")
    script = setting.workdir / "peer.lua"
    script.write_text(lua_script(ids=ids_file, token=setting.token, query=QUERY,
                                 threads=threads), encoding="utf-8")
    hive = setting.hive
    marks = mark(hive.pid, setting.gateway_cpus, setting.load_cpus)
    done: WrkResult = run_wrk(setting.wrk, hive.url, script, connections=clients,
                              threads=threads, seconds=setting.args.seconds)
    figures = measures(marks, hive.pid, setting.gateway_cpus, setting.load_cpus, done.requests)
    setting.ids.used(done.requests + done.errors)
    return {"run": f"cache-miss x{clients}", "variant": "hive", "round": round_, "load": "wrk",
            "requests": done.requests,
            "req_per_s": round(done.requests / done.seconds, 1) if done.seconds else 0.0,
            "p50_ms": round(done.p50_ms, 1), "p95_ms": round(done.p95_ms, 1),
            "p99_ms": round(done.p99_ms, 1), "mean_ms": round(done.mean_ms, 1),
            "errors": done.errors, **figures, "wrk_threads": threads,
            **setting.versions,
            **({"ids_wrapped": True} if done.detail["wrapped"] else {}),
            **({"first_error": done.detail["first_error"]}
               if "first_error" in done.detail else {})}


# --- the whole ----------------------------------------------------------------------------


def sample_child(population: Population, nhs_numbers: Sequence[str]) -> str:
    """The first of `nhs_numbers` whom all four systems know (the sample answer's child)."""
    for nhs in nhs_numbers:
        child = population.child(nhs)
        if child is not None and all(child.known_to(s) for s in SYSTEMS):
            return nhs
    return nhs_numbers[0]


async def upstream_calls(launcher: Launcher, token: str,
                         children: Sequence[str]) -> dict[str, Any]:
    """`count_upstream` on a counting gateway, started for it and then stopped."""
    counter = launcher.start("hive-counting", count_upstream=True)
    try:
        async with aiohttp.ClientSession() as session:
            await wait_ready(counter, session, token, children[0])
            return await count_upstream(session, counter, token, children)
    finally:
        counter.stop()


async def check_and_warm(hive: Hive, args: argparse.Namespace, minted: dict[str, str],
                         population: Population, ids: Ids) -> dict[str, Any]:
    """Once the measured gateway answers: its refusals, the sample answer, the warm-up
    (every answer checked) and its idle CPU, for the header."""
    nhs = sample_child(population, ids.hot + ids.cold)
    checks: dict[str, Any] = {}
    async with aiohttp.ClientSession() as session:
        await wait_ready(hive, session, minted["good"], nhs)
        checks["auth_refusals"] = await auth_refusals(session, hive.url, minted, nhs)
        checks["sample_nhs"] = nhs
        checks["sample_answer"] = (await ask(session, hive.url, minted["good"], nhs))[1]
    hot = [c for n in ids.hot if (c := population.child(n)) is not None]
    checked, problems = await warm_up(hive.url, minted["good"], hot, args.warmup, WARM_CLIENTS)
    if problems:
        raise SystemExit("hive gateway's answers are not the children's records:\n"
                         + "\n".join(problems))
    checks["answers_checked"] = checked
    before = procs.cpu_snapshot(hive.pid)
    await asyncio.sleep(IDLE_SECONDS)  # what it spends with nothing to do (timers, polling)
    idle = procs.cpu_spent(before, procs.cpu_snapshot(hive.pid))
    checks["idle_cpus_busy"] = None if idle is None else round(idle / IDLE_SECONDS, 3)
    return checks


def _header(args: argparse.Namespace, setting: Setting, checks: dict[str, Any]) -> dict[str, Any]:
    return {"peer": "hive", "clients": [int(n) for n in args.clients.split(",")],
            "seconds": args.seconds, "simulator_latency_ms": args.latency_ms, "load": "wrk",
            "gateway_cpus": sorted(setting.gateway_cpus), "load_cpus": sorted(setting.load_cpus),
            "repeat": args.repeat,
            "versions": {**package_versions(), "node": setting.versions["node"]},
            **checks, "query": QUERY, "temp": str(setting.workdir)}


def _runs(setting: Setting) -> None:
    """Every round's timed runs, then (K > 1) the medians, as the bench prints them."""
    args = setting.args
    results = []
    for round_ in range(1, args.repeat + 1):
        for clients in (int(n) for n in args.clients.split(",")):
            line = timed_run(setting, clients, round_)
            print(json.dumps(line), flush=True)
            results.append(line)
    if args.repeat > 1:
        for summary in _summaries(results):
            print(json.dumps({k: v for k, v in summary.items() if v is not None}), flush=True)


async def main(args: argparse.Namespace) -> None:
    gateway_cpus, load_cpus = procs.load_split(args.load_cpus)
    procs.pin(0, load_cpus)  # this process, and so the simulators, the compose and wrk
    wrk = wrk_path()
    if wrk is None:
        raise SystemExit("wrk is not installed (Debian's package wrk)")
    node = _node()
    ensure_installed()
    versions = {"hive_gateway": package_versions()["@graphql-hive/gateway"],
                "node": node_version(node)}
    population = Population.generate(seed=args.seed, size=args.children)
    numbers = servable(population)
    ids = Ids(cold=numbers[: len(numbers) - args.hot], hot=numbers[-args.hot:])
    key = ECKey.generate_key("P-256", {"kid": "bench-1", "use": "sig", "alg": "ES256"})
    minted = tokens(key)
    workdir = Path(tempfile.mkdtemp(prefix="cpg-peer-"))
    completed = False
    try:
        with simulators(args.latency_ms, args.children, args.seed) as urls:
            supergraph = workdir / "supergraph.graphql"
            await asyncio.to_thread(compose, node, HIVE_DIR, urls, supergraph)
            async with jwks_server(key) as jwks_url:
                launcher = Launcher(node, HIVE_DIR, supergraph, jwks_url, workdir, gateway_cpus)
                checks = {} if args.no_count_upstream else await upstream_calls(
                    launcher, minted["good"], ids.hot[:COUNT_REQUESTS])
                hive = launcher.start("hive", port=args.port)
                try:
                    checks |= await check_and_warm(hive, args, minted, population, ids)
                    setting = Setting(args, hive, minted["good"], ids, workdir, wrk,
                                      gateway_cpus, load_cpus, versions)
                    print(json.dumps(_header(args, setting, checks)), flush=True)
                    await asyncio.to_thread(_runs, setting)
                finally:
                    hive.stop()
        completed = True
    finally:
        if completed and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        elif not completed:
            print(f"bench.peer: the run did not complete; its files are in {workdir}",
                  file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.peer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="32",
                        help="comma-separated concurrencies (connections)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=1, metavar="K",
                        help="K rounds of every concurrency, then medians")
    add_simulator_options(parser)
    parser.add_argument("--hot", type=int, default=200,
                        help="children kept out of the timed runs, as the bench's cache-hit set "
                             "(the warm-up asks for them)")
    parser.add_argument("--warmup", type=int, default=5000, metavar="N",
                        help="requests before the timed runs, 32 at a time, every answer "
                             "checked (Node's JIT: CPU per request still fell by 10 %% over "
                             "the first 7,000)")
    parser.add_argument("--port", type=int, default=None,
                        help="the measured gateway's port (default: a free one)")
    parser.add_argument("--load-cpus", type=int, default=None, metavar="N",
                        help="CPUs for wrk and the simulators: the last N (default half, at "
                             "least 1); Hive gets the others")
    parser.add_argument("--no-count-upstream", action="store_true",
                        help="skip the counting gateway (upstream calls per request)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder (supergraph, logs, wrk script)")
    return parser


if __name__ == "__main__":
    asyncio.run(main(_parser().parse_args()))
