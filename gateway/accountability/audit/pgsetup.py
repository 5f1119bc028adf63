"""Setting up the PostgreSQL audit store: schema, append-only triggers, a gateway role.

Run once with an administrator's connection (`contactpoint audit init-db`). The
tables belong to the administrator; the gateway's role gets USAGE on the schema
and INSERT and SELECT on the two tables and nothing else, so it can neither
change nor remove what it wrote. Sequence numbers come from the chain head, not
from a sequence (a rolled-back transaction would leave a gap that looks like a
deletion), so there is no sequence to grant. Idempotent.
"""

from __future__ import annotations

import re

import asyncpg

from gateway.accountability.audit.postgres_store import SCHEMA

__all__ = ["SetupError", "init_postgres"]

_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.event (
    seq        bigint PRIMARY KEY CHECK (seq > 0),
    at         timestamptz NOT NULL,
    child      text,
    body       text NOT NULL,
    prev_hash  bytea NOT NULL CHECK (octet_length(prev_hash) = 32),
    leaf_hash  bytea NOT NULL CHECK (octet_length(leaf_hash) = 32),
    chain_hash bytea NOT NULL CHECK (octet_length(chain_hash) = 32)
);
CREATE INDEX IF NOT EXISTS event_child ON {SCHEMA}.event (child, seq);
CREATE TABLE IF NOT EXISTS {SCHEMA}.checkpoint (
    seq        bigint PRIMARY KEY,
    prev_seq   bigint NOT NULL,
    every      integer NOT NULL,
    chain_hash bytea NOT NULL,
    key_id     text NOT NULL,
    algorithm  text NOT NULL,
    signature  bytea NOT NULL
);
CREATE OR REPLACE FUNCTION {SCHEMA}.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE OR REPLACE TRIGGER event_append_only BEFORE UPDATE OR DELETE ON {SCHEMA}.event
    FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.refuse_change();
CREATE OR REPLACE TRIGGER event_no_truncate BEFORE TRUNCATE ON {SCHEMA}.event
    FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.refuse_change();
CREATE OR REPLACE TRIGGER checkpoint_append_only BEFORE UPDATE OR DELETE ON {SCHEMA}.checkpoint
    FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.refuse_change();
CREATE OR REPLACE TRIGGER checkpoint_no_truncate BEFORE TRUNCATE ON {SCHEMA}.checkpoint
    FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.refuse_change();
REVOKE ALL ON SCHEMA {SCHEMA} FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA {SCHEMA} FROM PUBLIC;
"""

_GRANTS = f"""
REVOKE ALL ON ALL TABLES IN SCHEMA {SCHEMA} FROM {{role}};
GRANT USAGE ON SCHEMA {SCHEMA} TO {{role}};
GRANT SELECT, INSERT ON {SCHEMA}.event, {SCHEMA}.checkpoint TO {{role}};
"""


class SetupError(Exception):
    """The audit store could not be set up; the message is one line, fit for a terminal."""


async def init_postgres(admin_dsn: str, gateway_role: str, *,
                        connect_timeout: float = 10.0) -> None:
    """Create the schema, tables and triggers, and a LOGIN role that may only INSERT and SELECT.

    Raises `SetupError` for an unusable role name, a role that would defeat the
    point (a superuser, or the administrator itself), or an unreachable server.
    """
    if not _ROLE.match(gateway_role):
        raise SetupError(f"gateway role {gateway_role!r} must match {_ROLE.pattern}")
    role = f'"{gateway_role}"'
    try:
        conn = await asyncpg.connect(admin_dsn, timeout=connect_timeout)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise SetupError(f"cannot connect with the admin DSN: {exc}") from None
    try:
        async with conn.transaction():
            if await conn.fetchval("SELECT current_user") == gateway_role:
                raise SetupError("the gateway role must not be the administrator")
            existing = await conn.fetchrow(
                "SELECT rolsuper OR rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = $1",
                gateway_role)
            if existing is None:
                await conn.execute(f"CREATE ROLE {role} LOGIN")
            elif existing[0]:
                raise SetupError(f"role {gateway_role} is a superuser or bypasses row security")
            elif not existing[1]:
                await conn.execute(f"ALTER ROLE {role} LOGIN")
            await conn.execute(DDL)
            await conn.execute(_GRANTS.format(role=role))
    except asyncpg.PostgresError as exc:
        raise SetupError(f"setting up the audit store failed: {exc}") from None
    finally:
        await conn.close()
