"""Audit fixtures: a fresh PostgreSQL database per test session, both stores per test.

PostgreSQL is the real server on 127.0.0.1:5432 (trust auth). Without it the
PostgreSQL tests skip locally, but fail under CI=true: they never silently skip in CI.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from dataclasses import dataclass

import asyncpg
import pytest

from gateway.accountability.audit import init_postgres
from tests.audit.helpers import Tamperer, settings

SERVER = "postgresql://postgres@127.0.0.1:5432"


@dataclass(frozen=True)
class PgDatabase:
    name: str
    role: str

    @property
    def admin_dsn(self) -> str:
        return f"{SERVER}/{self.name}"

    @property
    def gateway_dsn(self) -> str:
        return f"postgresql://{self.role}@127.0.0.1:5432/{self.name}"


async def _create(db: PgDatabase) -> None:
    conn = await asyncpg.connect(f"{SERVER}/postgres", timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{db.name}"')
    finally:
        await conn.close()
    await init_postgres(db.admin_dsn, db.role)


async def _drop(db: PgDatabase) -> None:
    conn = await asyncpg.connect(f"{SERVER}/postgres", timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')
        await conn.execute(f'DROP ROLE IF EXISTS "{db.role}"')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg():
    suffix = secrets.token_hex(6)
    db = PgDatabase(f"cp_audit_test_{suffix}", f"cp_audit_gw_{suffix}")
    try:
        asyncio.run(_create(db))
    except (OSError, asyncpg.PostgresError) as exc:
        message = f"PostgreSQL on 127.0.0.1:5432 is unusable: {exc}"
        if os.environ.get("CI") == "true":  # CI decides: fail, never skip
            pytest.fail(message)
        pytest.skip(message)
    yield db
    asyncio.run(_drop(db))


async def _empty(db: PgDatabase) -> None:
    conn = await asyncpg.connect(db.admin_dsn)
    try:
        await conn.execute("SET session_replication_role = replica")
        await conn.execute("DELETE FROM contactpoint_audit.event;"
                           " DELETE FROM contactpoint_audit.checkpoint")
    finally:
        await conn.close()


@dataclass(frozen=True)
class Backend:
    """One store under test: how to configure it, and how to tamper with it."""

    name: str
    options: dict[str, object]
    tamper: Tamperer

    def settings(self, **values: object):
        return settings(**{**self.options, **values})


@pytest.fixture
async def pg_backend(pg):
    await _empty(pg)
    return Backend("postgresql", {"store": "postgresql", "postgresql_dsn": pg.gateway_dsn},
                   Tamperer(admin_dsn=pg.admin_dsn))


@pytest.fixture
def sqlite_backend(tmp_path):
    path = str(tmp_path / "audit.db")
    return Backend("sqlite", {"store": "sqlite", "sqlite_path": path}, Tamperer(sqlite_path=path))


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request):
    return request.getfixturevalue(f"{'pg' if request.param == 'postgresql' else 'sqlite'}_backend")
