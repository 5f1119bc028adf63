"""Two gateway processes on one Redis enforce one budget."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from gateway.limits.budgets import SUBJECT_HOUR
from tests.limits.support import START

ROOT = Path(__file__).resolve().parents[2]


async def start_worker(prefix: str, name: str) -> asyncio.subprocess.Process:
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.limits.charge_worker", prefix, name, str(START),
        cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert worker.stdout is not None
    line = await asyncio.wait_for(worker.stdout.readline(), 15)
    assert line == b"ready\n"
    return worker


async def finish(worker: asyncio.subprocess.Process) -> dict[str, int]:
    out, _ = await asyncio.wait_for(worker.communicate(), 15)
    assert worker.returncode == 0
    return json.loads(out)


async def test_two_processes_charging_one_budget_count_exactly_its_limit(redis_client, prefix):
    workers = await asyncio.gather(start_worker(prefix, "a"), start_worker(prefix, "b"))
    for worker in workers:          # both are connected: let them go together
        assert worker.stdin is not None
        worker.stdin.write(b"go\n")
        await worker.stdin.drain()
    outcomes = await asyncio.gather(*(finish(worker) for worker in workers))
    assert sum(o["counted"] for o in outcomes) == 20
    assert sum(o["refused"] for o in outcomes) == 40
    hour_sets = [key async for key in
                 redis_client.scan_iter(match=f"{prefix}b:{SUBJECT_HOUR.tag}:*")
                 if not key.endswith((b":warned", b":exceeded"))]
    assert len(hour_sets) == 1
    assert await redis_client.scard(hour_sets[0]) == 20
