"""`contactpoint audit verify | export | init-db`: exit 0 good, 1 tampered, 2 cannot run.

Each prints one line to stderr when it cannot run (bad configuration, store
unreachable) so the output is fit for a cron job or an alert.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, TextIO

from gateway.accountability.audit import open_store
from gateway.accountability.audit.checkpoints import CheckpointKey
from gateway.accountability.audit.pgsetup import SetupError, init_postgres
from gateway.accountability.audit.postgres_store import SCHEMA
from gateway.accountability.audit.store import StoreError
from gateway.accountability.audit.verify import export_log, verify_log
from gateway.settings import ConfigError, load_settings

if TYPE_CHECKING:
    from pathlib import Path

    from gateway.settings import AuditSettings

__all__ = ["export_command", "init_db_command", "verify_command"]


def _fail(command: str, message: str) -> int:
    sys.stderr.write(f"contactpoint audit {command}: {message}\n")
    return 2


def _audit_settings(config: Path | None) -> AuditSettings:
    settings = load_settings(config).audit
    if settings.store == "none":
        raise ConfigError('audit.store is "none": there is no log')
    return settings


async def _verify(settings: AuditSettings) -> tuple[bool, str]:
    key = CheckpointKey.from_settings(settings)
    store = open_store(settings, read_only=True)
    try:
        verdict = await verify_log(store, key, settings.checkpoint_every)
    finally:
        await store.close()
    return verdict.ok, verdict.line()


def verify_command(config: Path | None) -> int:
    """Check the whole log: "ok: N events, M checkpoints" (0) or the first bad event (1)."""
    try:
        ok, line = asyncio.run(_verify(_audit_settings(config)))
    except ConfigError as exc:
        return _fail("verify", str(exc))
    except StoreError as exc:
        return _fail("verify", f"cannot read the log: {exc}")
    sys.stdout.write(line + "\n")
    return 0 if ok else 1


async def _export(settings: AuditSettings, out: TextIO, fhir: bool) -> int:
    store = open_store(settings, read_only=True)
    try:
        return await export_log(store, out, fhir=fhir)
    finally:
        await store.close()


def export_command(config: Path | None, out_path: Path | None, *, fhir: bool = False) -> int:
    """Write the log as JSON lines to `out_path` (default stdout)."""
    try:
        settings = _audit_settings(config)
        if out_path is None:
            asyncio.run(_export(settings, sys.stdout, fhir))
        else:
            with out_path.open("w", encoding="utf-8") as out:
                asyncio.run(_export(settings, out, fhir))
    except ConfigError as exc:
        return _fail("export", str(exc))
    except StoreError as exc:
        return _fail("export", f"cannot read the log: {exc}")
    except OSError as exc:
        return _fail("export", f"cannot write {out_path}: {exc.strerror}")
    return 0


def init_db_command(admin_dsn: str, gateway_role: str) -> int:
    """Create the PostgreSQL schema and the INSERT/SELECT-only gateway role."""
    try:
        asyncio.run(init_postgres(admin_dsn, gateway_role))
    except SetupError as exc:
        return _fail("init-db", str(exc))
    sys.stdout.write(f"ok: schema {SCHEMA} ready; role {gateway_role} may only INSERT and "
                     "SELECT\n")
    return 0
