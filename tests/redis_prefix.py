"""A key prefix no other test uses, its keys deleted afterwards (tests share one Redis)."""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import redis.asyncio as aioredis


@contextlib.asynccontextmanager
async def unique_prefix(client: aioredis.Redis, tag: str) -> AsyncIterator[str]:
    """``{tag}{12 random hex}:``; every key under it is deleted when the block ends."""
    chosen = f"{tag}{uuid.uuid4().hex[:12]}:"
    try:
        yield chosen
    finally:  # also when the block raises
        keys = [key async for key in client.scan_iter(match=f"{chosen}*")]
        if keys:
            await client.delete(*keys)
