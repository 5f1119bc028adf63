"""Fixtures for budgets, rate limits and alerts: real Redis under a unique prefix."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from tests.limits.support import REDIS_URL, Clock, RecordingSink
from tests.redis_prefix import unique_prefix


@pytest.fixture
async def redis_client():
    client = aioredis.Redis.from_url(REDIS_URL, socket_timeout=1.0)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(redis_client):
    """A key prefix no other test uses; its keys are deleted afterwards."""
    async with unique_prefix(redis_client, "tl") as chosen:
        yield chosen


@pytest.fixture
async def dead_redis():
    """A client for a port nothing listens on: every call fails at once."""
    client = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2,
                                     socket_timeout=0.2)
    yield client
    await client.aclose()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def sink():
    return RecordingSink()
