"""`contactpoint audit verify | export | public-key | init-db`: exit 0 good, 1 tampered,
2 cannot run.

Each prints one line to stderr when it cannot run (bad configuration, store
unreachable) so the output is fit for a cron job or an alert.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from gateway.accountability.audit import open_store
from gateway.accountability.audit.checkpoints import CheckpointKey, CheckpointVerifier
from gateway.accountability.audit.pgsetup import SetupError, init_postgres
from gateway.accountability.audit.postgres_store import SCHEMA
from gateway.accountability.audit.published import MalformedLineError, read_published
from gateway.accountability.audit.store import StoreError
from gateway.accountability.audit.verify import export_log, verify_log
from gateway.settings import ConfigError, load_settings

if TYPE_CHECKING:
    import argparse

    from gateway.accountability.audit.published import Published
    from gateway.settings import AuditSettings

__all__ = ["add_audit_parser", "export_command", "init_db_command", "public_key_command",
           "verify_command"]


def _fail(command: str, message: str) -> int:
    sys.stderr.write(f"contactpoint audit {command}: {message}\n")
    return 2


def _audit_settings(config: Path | None) -> AuditSettings:
    settings = load_settings(config).audit
    if settings.store == "none":
        raise ConfigError('audit.store is "none": there is no log')
    return settings


def _verifier(settings: AuditSettings, public_key: Path | None) -> CheckpointVerifier:
    if public_key is None:
        return CheckpointKey.from_settings(settings)
    try:
        return CheckpointVerifier.from_pem(public_key.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read public key {public_key}: {exc.strerror}") from None


def _published(settings: AuditSettings, checkpoints: Path | None) -> list[Published]:
    path = checkpoints
    if path is None and settings.checkpoint_file is not None:
        path = Path(settings.checkpoint_file)
    if path is None:
        return []
    try:
        return read_published(path)
    except OSError as exc:
        raise ConfigError(f"cannot read checkpoint file {path}: {exc.strerror}") from None


async def _verify(settings: AuditSettings, public_key: Path | None,
                  checkpoints: Path | None) -> tuple[bool, str]:
    key = _verifier(settings, public_key)
    # Read before the store: every checkpoint in the file then covers committed events.
    try:
        published = _published(settings, checkpoints)
    except MalformedLineError as exc:
        return False, f"bad: {exc} (forged, or a torn write)"
    store = open_store(settings, read_only=True)
    try:
        verdict = await verify_log(store, key, settings.checkpoint_every, published)
    finally:
        await store.close()
    return verdict.ok, verdict.line()


def verify_command(config: Path | None, public_key: Path | None = None,
                   checkpoints: Path | None = None) -> int:
    """Check the whole log: "ok: N events, M checkpoints" (0) or the first bad event (1).

    `public_key` (PEM) verifies with the public key alone, so the auditor holds
    no secret (default: the public half of the configured key). `checkpoints`
    is the published checkpoint file, ideally the witness's copy (default:
    `audit.checkpoint_file`); with it, a log cut short is detected.
    """
    try:
        ok, line = asyncio.run(_verify(_audit_settings(config), public_key, checkpoints))
    except ConfigError as exc:
        return _fail("verify", str(exc))
    except StoreError as exc:
        return _fail("verify", f"cannot read the log: {exc}")
    sys.stdout.write(line + "\n")
    return 0 if ok else 1


def public_key_command(config: Path | None) -> int:
    """Print the checkpoint key's public half (PEM), for `verify --public-key` and witnesses."""
    try:
        key = CheckpointKey.from_settings(_audit_settings(config))
    except ConfigError as exc:
        return _fail("public-key", str(exc))
    sys.stdout.write(key.public_pem())
    return 0


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


def _run(args: argparse.Namespace) -> int:
    if args.audit_command == "verify":
        return verify_command(args.config, args.public_key, args.checkpoints)
    if args.audit_command == "export":
        return export_command(args.config, args.out, fhir=args.fhir)
    if args.audit_command == "public-key":
        return public_key_command(args.config)
    return init_db_command(args.admin_dsn, args.gateway_role)


def add_audit_parser(
        commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add ``audit verify|export|public-key|init-db`` to `commands`; ``run(args)`` runs it."""
    audit = commands.add_parser("audit", help="check, export or set up the audit log")
    actions = audit.add_subparsers(dest="audit_command", required=True)
    verify = actions.add_parser("verify", help="check the whole log; name the first bad event")
    export = actions.add_parser("export", help="write the log as JSON lines")
    public_key = actions.add_parser("public-key", help="print the checkpoint public key (PEM)")
    for action in (verify, export, public_key):
        action.add_argument("--config", type=Path, default=None,
                            help="TOML configuration (default: $CONTACTPOINT_CONFIG)")
    verify.add_argument("--public-key", type=Path, default=None,
                        help="PEM public key to verify with (default: the configured key's)")
    verify.add_argument("--checkpoints", type=Path, default=None,
                        help="published checkpoint file, e.g. the witness's copy "
                             "(default: audit.checkpoint_file)")
    export.add_argument("--out", type=Path, default=None, help="file to write (default: stdout)")
    export.add_argument("--fhir", action="store_true", help="FHIR AuditEvent resources instead")
    init_db = actions.add_parser("init-db", help="create the PostgreSQL schema and gateway role")
    init_db.add_argument("--admin-dsn", required=True, help="a role that may create roles")
    init_db.add_argument("--gateway-role", required=True,
                         help="the LOGIN role the gateway connects as (INSERT and SELECT only)")
    audit.set_defaults(run=_run)
    return audit
