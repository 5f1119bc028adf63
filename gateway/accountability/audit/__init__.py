"""The tamper-evident audit log: every access and refusal, committed before data leaves.

Events name children only by keyed pseudonym; rows form a SHA-256 hash chain with
signed checkpoints, also published to an append-only file outside the store (so a
log cut short is detected); the store is SQLite (embedded default) or PostgreSQL
(production), both append-only. `open_audit_log(settings.audit)` gives the
gateway its `AuditLog`; `contactpoint audit verify|export|public-key|init-db` work
on the same stores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.accountability.audit.chain import Sealer
from gateway.accountability.audit.checkpoints import CheckpointKey
from gateway.accountability.audit.events import AuditEvent, child_pseudonym
from gateway.accountability.audit.log import AuditLog, GroupCommitLog, NullAuditLog
from gateway.accountability.audit.pgsetup import SetupError, init_postgres
from gateway.accountability.audit.postgres_store import PostgresStore
from gateway.accountability.audit.published import CheckpointFile
from gateway.accountability.audit.sqlite_store import SqliteStore
from gateway.accountability.audit.verify import Problem, Verdict, export_log, verify_log
from gateway.settings import ConfigError

if TYPE_CHECKING:
    from gateway.accountability.audit.store import AuditStore
    from gateway.settings import AuditSettings

__all__ = [
    "AuditEvent",
    "AuditLog",
    "GroupCommitLog",
    "NullAuditLog",
    "Problem",
    "SetupError",
    "Verdict",
    "child_pseudonym",
    "export_log",
    "init_postgres",
    "open_audit_log",
    "open_store",
    "verify_log",
]


def open_store(settings: AuditSettings, *, read_only: bool = False) -> AuditStore:
    """The configured store (connecting lazily); `read_only` opens SQLite without writing.

    Raises `ConfigError` for `store = "none"` or an unusable checkpoint key.
    """
    sealer = Sealer(CheckpointKey.from_settings(settings), settings.checkpoint_every)
    if settings.store == "sqlite":
        return SqliteStore(settings.sqlite_path, sealer, settings.timeout_seconds,
                           read_only=read_only)
    if settings.store == "postgresql" and settings.postgresql_dsn is not None:
        return PostgresStore(settings.postgresql_dsn.get_secret_value(), sealer,
                             settings.timeout_seconds)
    raise ConfigError(f"audit store {settings.store!r} keeps no log")


async def open_audit_log(settings: AuditSettings) -> AuditLog:
    """The gateway's audit log; `store = "none"` gives a `NullAuditLog`.

    Never waits for the store: it connects on first use, so a gateway can start
    (and report itself not ready) while the store is down. Close it on shutdown.
    """
    if settings.store == "none":
        return NullAuditLog()
    publisher = None if settings.checkpoint_file is None else CheckpointFile(
        settings.checkpoint_file)
    return GroupCommitLog(open_store(settings), flush_interval_ms=settings.flush_interval_ms,
                          max_batch=settings.max_batch, timeout_seconds=settings.timeout_seconds,
                          load_wait_ms=settings.load_wait_ms,
                          checkpoint_interval_seconds=settings.checkpoint_interval_seconds,
                          publisher=publisher)
