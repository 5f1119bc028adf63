"""PostgreSQL: the gateway role may only INSERT and SELECT; several writers keep one chain."""

import asyncio
import itertools

import asyncpg
import pytest

from gateway.accountability.audit import (
    SetupError,
    init_postgres,
    open_audit_log,
    open_store,
    verify_log,
)
from gateway.accountability.audit.checkpoints import CheckpointKey
from tests.audit.helpers import event

TABLES = ("contactpoint_audit.event", "contactpoint_audit.checkpoint")


async def test_gateway_role_may_only_insert_and_select(pg, pg_backend):
    log = await open_audit_log(pg_backend.settings())
    await log.record([event(i) for i in range(5)])
    await log.close()
    conn = await asyncpg.connect(pg.gateway_dsn)
    try:
        assert await conn.fetchval("SELECT current_user") == pg.role
        assert await conn.fetchval("SELECT count(*) FROM contactpoint_audit.event") == 5
        for table in TABLES:
            for statement in ("UPDATE {} SET seq = seq + 100", "DELETE FROM {}", "TRUNCATE {}",
                              "DROP TABLE {}", "ALTER TABLE {} DISABLE TRIGGER USER"):
                with pytest.raises(asyncpg.InsufficientPrivilegeError,
                                   match=r"permission denied|must be owner"):
                    await conn.execute(statement.replace("{}", table))
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE contactpoint_audit.shadow (x int)")
        grants = await conn.fetch(
            "SELECT table_name, privilege_type FROM information_schema.role_table_grants"
            " WHERE grantee = $1 ORDER BY 1, 2", pg.role)
        assert [tuple(g) for g in grants] == [("checkpoint", "INSERT"), ("checkpoint", "SELECT"),
                                               ("event", "INSERT"), ("event", "SELECT")]
    finally:
        await conn.close()
    admin = await asyncpg.connect(pg.admin_dsn)
    try:
        role = await admin.fetchrow("SELECT rolcanlogin, rolsuper FROM pg_roles"
                                    " WHERE rolname = $1", pg.role)
        assert tuple(role) == (True, False)
    finally:
        await admin.close()


async def test_triggers_refuse_even_the_owner(pg, pg_backend):
    log = await open_audit_log(pg_backend.settings())
    await log.record([event(i) for i in range(5)])  # one checkpoint too
    await log.close()
    conn = await asyncpg.connect(pg.admin_dsn)
    try:
        for statement in ("UPDATE contactpoint_audit.event SET child = NULL",
                          "DELETE FROM contactpoint_audit.event",
                          "TRUNCATE contactpoint_audit.event",
                          "DELETE FROM contactpoint_audit.checkpoint"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement)
    finally:
        await conn.close()


async def test_two_writers_keep_one_chain(pg_backend):
    # Two logs stand in for two gateway processes: separate pools, one database.
    audit = pg_backend.settings(checkpoint_every=7, max_batch=5)
    first, second = await open_audit_log(audit), await open_audit_log(audit)
    try:
        await asyncio.gather(*((first if i % 2 else second).record([event(i)])
                               for i in range(120)))
        assert first.transactions >= 12
        assert second.transactions >= 12
    finally:
        await first.close()
        await second.close()
    rows = await pg_backend.tamper.fetch("SELECT body::json->>'request_id' FROM"
                                         " contactpoint_audit.event ORDER BY seq")
    writers = [int(str(r[0]).removeprefix("req-")) % 2 for r in rows]
    assert sum(a != b for a, b in itertools.pairwise(writers)) >= 3  # they really interleaved
    store = open_store(audit)
    try:
        verdict = await verify_log(store, CheckpointKey.from_settings(audit), 7)
    finally:
        await store.close()
    assert verdict.line() == "ok: 120 events, 17 checkpoints"


async def test_init_db_is_idempotent(pg):
    await init_postgres(pg.admin_dsn, pg.role)
    conn = await asyncpg.connect(pg.gateway_dsn)
    await conn.close()


@pytest.mark.parametrize(("role", "fragment"), [
    ("Robert'); DROP TABLE x; --", "must match"),
    ("postgres", "must not be the administrator"),
])
async def test_init_db_refuses_unsafe_roles(pg, role, fragment):
    with pytest.raises(SetupError, match=fragment):
        await init_postgres(pg.admin_dsn, role)


async def test_init_db_refuses_a_superuser_role(pg):
    conn = await asyncpg.connect(pg.admin_dsn)
    role = f"{pg.role}_su"
    await conn.execute(f'CREATE ROLE "{role}" SUPERUSER')
    try:
        with pytest.raises(SetupError, match="superuser"):
            await init_postgres(pg.admin_dsn, role)
    finally:
        await conn.execute(f'DROP ROLE "{role}"')
        await conn.close()


async def test_init_db_unreachable_server():
    with pytest.raises(SetupError, match="cannot connect"):
        await init_postgres("postgresql://postgres@127.0.0.1:1/x", "gw", connect_timeout=1)
