"""A Redis client (its round trips counted), the hot path's line, a fresh key prefix per test."""

from __future__ import annotations

import os

import pytest

from gateway.cache.client import open_redis
from gateway.cache.line import line_for_url
from tests.redis_prefix import unique_prefix

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/1")


@pytest.fixture
async def client():
    redis = open_redis(REDIS_URL, 1.0)
    await redis.ping()  # the connection (and its handshake) opened outside the counts
    yield redis
    await redis.aclose()


@pytest.fixture
async def prefix(client):
    async with unique_prefix(client, "tc") as chosen:
        yield chosen


@pytest.fixture
async def line():
    made = line_for_url(REDIS_URL, 1.0)
    assert made is not None
    await made.execute_command("PING")  # connected outside the counts
    yield made
    await made.aclose()
