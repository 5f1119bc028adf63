"""`contactpoint serve --workers 2`: two processes on one port; SIGTERM drains, then flushes.

The gateway runs as a user would start it, in production mode (Redis, an audit log in
SQLite with published checkpoints); the simulated systems and the JWKS server run in the
test's own event loop. Which worker holds a connection is read from /proc (Linux): the
server side of every established connection to the port belongs to one worker's fds.
"""

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.harness import FIND_QUERY, Gateway, settings_tree
from tests.integration.test_socket_and_cli import free_port
from tests.integration.test_two_processes import wait_healthy, write_config

ROOT = Path(__file__).parents[2]
CLI = [sys.executable, "-m", "gateway.web.cli"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
CHILD = ('query($id: ID!) { child(id: $id, purpose: SAFEGUARDING, caseReference: "DRAIN-7")'
         " { name { family } primaryCare { practice { name } } } }")

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux /proc")


def production_config(tmp_path, sims, jwks, **budgets) -> Path:
    tree = settings_tree(sims.urls(), jwks.url, mode="production",
                         audit={"sqlite_path": str(tmp_path / "audit.db"),
                                "checkpoint_file": str(tmp_path / "checkpoints.jsonl"),
                                # two workers take turns at one file, each commit an fsync:
                                # on a busy shared disk a turn can pass the 2 s default,
                                # and this test is about the port and the drain, not that
                                "timeout_seconds": 10},
                         alerts={"path": str(tmp_path / "alerts.jsonl")},
                         limits={"header_read_seconds": 4, "body_read_seconds": 9},
                         # one subject sends many requests here: a roomy request rate
                         budgets={"processes": 2, "burst": 1_000,
                                  "subject_requests_per_minute": 10_000, **budgets})
    for connector in tree["connectors"]:
        connector["timeout_seconds"] = 5.0  # the slow GP below must not time out
        connector["cache_ttl_seconds"] = 0  # ...and must be asked, not a cached answer
    path = tmp_path / "gateway.toml"
    write_config(path, tree)
    return path


def workers_of(parent: int) -> set[int]:
    """The worker processes (multiprocessing's spawned children) of `parent`."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if ppid == parent and b"spawn_main" in command:
            found.add(int(entry.name))
    return found


def serving_pids(port: int, pids: set[int]) -> set[int]:
    """Which of `pids` hold the server side of an established connection to `port`."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "01":  # ESTABLISHED
            inodes.add(f"socket:[{fields[9]}]")
    holders = set()
    for pid in pids:
        try:
            links = {os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()}
        except OSError:
            continue
        if links & inodes:
            holders.add(pid)
    return holders


def log_tail(log: Path) -> str:
    """The end of the gateway's log, for a failure message: why a worker refused."""
    return log.read_text(errors="replace")[-3000:]


async def both_workers_answer(port: int, workers: set[int], helper: Gateway, nhs: str,
                              log: Path) -> int:
    """Open batches of connections, each asking a real query, until every worker has one.

    Returns how many queries were asked.
    """
    answered: set[int] = set()
    asked = 0
    deadline = time.monotonic() + 20
    while answered != workers:
        assert time.monotonic() < deadline, f"only {answered} of {workers} answered"
        clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                     limits=httpx.Limits(max_connections=1)) for _ in range(8)]
        try:
            find = {"query": FIND_QUERY, "variables": {"s": {"nhsNumber": nhs}}}
            responses = await asyncio.gather(*(c.post("/graphql", json=find, headers={
                "Authorization": f"Bearer {helper.token()}"}) for c in clients))
            asked += len(responses)
            assert all(r.status_code == 200 for r in responses), (
                [r.text for r in responses], log_tail(log))
            answered |= serving_pids(port, workers)  # the connections are still open
        finally:
            await asyncio.gather(*(c.aclose() for c in clients))
    return asked


def requests_counted(exposition: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in exposition.splitlines()
               if line.startswith("contactpoint_requests_total"))


async def contactpoint(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the CLI off the event loop (the simulators and JWKS server live on it)."""
    return await asyncio.to_thread(subprocess.run, [*CLI, *args], env=ENV, cwd=folder,
                                   capture_output=True, text=True, timeout=30, check=False)


async def exit_status(process: subprocess.Popen, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while (code := process.poll()) is None:
        assert time.monotonic() < deadline, "the gateway did not exit"
        await asyncio.sleep(0.05)
    return code


async def until(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


async def test_two_workers_share_the_port_and_drain_on_sigterm(sims, jwks, signing_key,
                                                               tmp_path):
    config = production_config(tmp_path, sims, jwks)
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*CLI, "serve", "--config", str(config), "--port", str(port), "--workers", "2",
             "--graceful-seconds", "15"], cwd=tmp_path, env=ENV, stdout=log, stderr=log)
    helper = Gateway(None, None, sims, signing_key, {}, None)
    nhs = sims.population.fixtures()["ordinary"]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
            await wait_healthy(client, process)
            workers = workers_of(process.pid)
            assert len(workers) == 2, workers
            queries = await both_workers_answer(port, workers, helper, nhs, log_path)
            # Either worker's /metrics counts every worker's requests (multi-process mode).
            metrics = await client.get("/metrics")
            assert metrics.status_code == 200, metrics.text
            assert requests_counted(metrics.text) == queries, metrics.text

            found = await client.post("/graphql", json={
                "query": FIND_QUERY, "variables": {"s": {"nhsNumber": nhs}}},
                headers={"Authorization": f"Bearer {helper.token()}"})
            child_id = found.json()["data"]["findChildren"][0]["id"]
            sims.gp.knobs.latency_ms = 2_000
            gp_calls = sum(sims.gp.hits.values())
            slow = asyncio.create_task(client.post(
                "/graphql", json={"query": CHILD, "variables": {"id": child_id}},
                headers={"Authorization": f"Bearer {helper.token()}"}))
            await until(lambda: sum(sims.gp.hits.values()) > gp_calls, 10, "the GP was not asked")
            process.send_signal(signal.SIGTERM)  # while the request waits on the GP

            response = await slow
            assert response.status_code == 200, (response.text, log_tail(log_path))
            body = response.json()
            assert "errors" not in body, (body, log_tail(log_path))
            assert body["data"]["child"]["primaryCare"]["practice"]["name"]
            assert await exit_status(process, 30) == 0
    finally:
        if process.poll() is None:  # failed early: still stop it cleanly (its metrics folder)
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    serve_log = log_path.read_text()
    # Each worker set its read deadlines from the configuration (not the class defaults).
    starting = re.findall(r"worker \d+ starting \(read deadlines: head 4s, body 9s\)", serve_log)
    assert len(starting) == 2, serve_log
    assert "Traceback" not in serve_log, serve_log

    exported = await contactpoint(tmp_path, "audit", "export", "--config", str(config))
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    drained = [line for line in lines if line["type"] == "event"
               and line["event"].get("case_reference") == "DRAIN-7"]
    assert len(drained) == 1, lines[-3:]
    assert drained[0]["event"]["action"] == "child.read", drained
    # Closing the log signed a checkpoint over the last event (of whichever worker).
    assert lines[-1]["type"] == "checkpoint", lines[-2:]
    verified = await contactpoint(tmp_path, "audit", "verify", "--config", str(config))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("ok:"), verified.stdout


async def test_more_workers_than_budget_shares_is_refused_in_production(sims, jwks, tmp_path):
    config = production_config(tmp_path, sims, jwks)
    result = await contactpoint(tmp_path, "serve", "--config", str(config),
                                "--port", str(free_port()), "--workers", "3")
    assert result.returncode == 2
    assert "--workers 3 exceeds [budgets] processes = 2" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
