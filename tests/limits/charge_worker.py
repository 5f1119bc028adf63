"""Run as a separate process: charge 30 distinct children against one shared budget.

    python -m tests.limits.charge_worker PREFIX NAME NOW

Prints "ready" once connected, waits for a line on stdin, charges all children at
once, then prints {"counted": n, "refused": m} as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys

import redis.asyncio as aioredis

from gateway.core.errors import AccessBudgetExceededError
from gateway.limits.budgets import Budgets
from gateway.settings import BudgetLimits, BudgetSettings
from tests.limits.support import REDIS_URL, SECRET, RecordingSink

CHILDREN = 30
SETTINGS = BudgetSettings(default=BudgetLimits(subject_per_hour=20))


async def main(prefix: str, name: str, now: float) -> dict[str, int]:
    client = aioredis.Redis.from_url(REDIS_URL, socket_timeout=2.0)
    try:
        budgets = Budgets(SETTINGS, client, prefix, SECRET, RecordingSink(), lambda: now)
        await client.ping()
        print("ready", flush=True)  # noqa: T201 - the parent reads it
        await asyncio.to_thread(sys.stdin.readline)
        results = await asyncio.gather(
            *(budgets.charge(subject="shared-subject", organisation="ORG-1",
                             roles=frozenset(), child=f"{name}-{i}", request_id=name)
              for i in range(CHILDREN)),
            return_exceptions=True)
    finally:
        await client.aclose()
    unexpected = [r for r in results
                  if isinstance(r, BaseException) and not isinstance(r, AccessBudgetExceededError)]
    if unexpected:
        raise unexpected[0]
    return {"counted": sum(not isinstance(r, BaseException) and r.counted for r in results),
            "refused": sum(isinstance(r, AccessBudgetExceededError) for r in results)}


if __name__ == "__main__":
    outcome = asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
    print(json.dumps(outcome), flush=True)  # noqa: T201 - the parent reads it
