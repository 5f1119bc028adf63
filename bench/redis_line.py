"""Micro-benchmark: CPU per Redis command, redis-py's asyncio client against the hot path's line.

    .venv/bin/python -m bench.redis_line [--redis-url URL] [--batches 1500] [--repeat 3]

Sends a script call shaped like a cache hit's first trip (`EVALSHA`, 6 keys, 2
arguments) `--batches` times at 1 and at 8 concurrent callers, through (a)
redis-py's `execute_command` (a pooled connection per call, as the rest of the
gateway uses it), (b) one redis-py pipeline per batch, and (c) `RedisLine`
(`gateway/cache/line.py`: one connection, each loop turn's commands in one
send). Prints CPU microseconds per command of this process (`time.process_time`),
the best of `--repeat` rounds, the variants interleaved within each round. Run it
pinned (`taskset -c 0`) on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import TYPE_CHECKING

import redis.asyncio as aioredis
import uvloop

from gateway.cache.line import line_for_url

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

SCRIPT = "return {1, 2, KEYS[1], ARGV[1]}"
KEYS = [f"bench:line:{n}" for n in range(6)]


async def _main(url: str, batches: int, repeat: int) -> None:
    client = aioredis.Redis.from_url(url, socket_timeout=1.0, retry_on_timeout=False)
    line = line_for_url(url, 1.0)
    if line is None:
        raise SystemExit(f"RedisLine does not take {url!r}")
    sha = await client.script_load(SCRIPT)
    command = ("EVALSHA", sha, len(KEYS), *KEYS, "a", "b")

    async def through_client(n: int) -> None:
        await asyncio.gather(*(client.execute_command(*command) for _ in range(n)))

    async def through_pipeline(n: int) -> None:
        pipe = client.pipeline(transaction=False)
        for _ in range(n):
            pipe.execute_command(*command)
        await pipe.execute(raise_on_error=False)

    async def through_line(n: int) -> None:
        await asyncio.gather(*(line.execute_command(*command) for _ in range(n)))

    variants: dict[str, Callable[[int], Awaitable[None]]] = {
        "redis-py": through_client, "redis-py pipeline": through_pipeline,
        "RedisLine": through_line}
    best: dict[tuple[str, int], float] = {}
    for _ in range(repeat):
        for concurrent in (1, 8):
            for name, send in variants.items():
                await send(concurrent)  # connections open
                started = time.process_time()
                for _ in range(batches):
                    await send(concurrent)
                per_command = (time.process_time() - started) / (batches * concurrent) * 1e6
                key = (name, concurrent)
                best[key] = min(best.get(key, per_command), per_command)
    for (name, concurrent), micros in best.items():
        print(json.dumps({"variant": name, "concurrent": concurrent,
                          "cpu_us_per_command": round(micros, 1)}))
    await line.aclose()
    await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--batches", type=int, default=1500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    uvloop.run(_main(args.redis_url, args.batches, args.repeat))


if __name__ == "__main__":
    main()
