"""Constants and builders shared by the connector tests."""

from __future__ import annotations

import datetime as dt

from connectors.manifest import load_manifest
from connectors.registry import build_connector

TODAY = dt.date(2026, 5, 1)
SIZE = 3_000
TIMEOUT = 1.0

KINDS = ("gp", "school", "council")


def make_connector(kind, url, timeout=TIMEOUT):
    """The connector of the built-in manifest `kind` (gp, school, council), named after it."""
    manifest = load_manifest(kind).model_copy(update={
        "base_url": url, "timeout_seconds": timeout, "cache_ttl_seconds": 5.0})
    return build_connector(manifest)


async def get(http, url, **params):
    """(status, content type, text) of a GET to a simulator."""
    async with http.get(url, params=params) as response:
        return response.status, response.content_type, await response.text()


def fixture_child(population, key):
    return population.child(population.fixtures()[key])
