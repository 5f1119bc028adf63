"""The `contactpoint` command: serve, demo, dev-token, audit, alerts digest, connector check,
config check."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from gateway.accountability.audit.commands import add_audit_parser
from gateway.accountability.digest_command import add_alerts_parser
from gateway.settings import ConfigError, check_production, load_settings
from gateway.web.connector_cli import add_connector_parser

__all__ = ["main"]


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from connectors.manifest import ManifestError
    from connectors.registry import resolve_manifests
    from gateway.logs import configure_logging
    from gateway.web.app import create_app
    from gateway.web.deadlines import deadline_protocol
    from gateway.web.documents import check_documents
    from gateway.web.gctuning import freeze_startup
    from gateway.web.serving import serve_workers, workers_problem

    try:
        settings = check_production(load_settings(args.config))
        resolve_manifests(settings)
        check_documents(settings)
    except (ConfigError, ManifestError) as exc:
        print(f"contactpoint serve: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    problem = workers_problem(settings, args.workers)
    if problem is not None:
        if not settings.development:
            print(f"contactpoint serve: {problem}", file=sys.stderr)  # noqa: T201
            return 2
        print(f"contactpoint serve: warning: {problem}", file=sys.stderr)  # noqa: T201
    configure_logging(fmt=settings.telemetry.log_format)
    if args.workers > 1:
        return serve_workers(args.config, workers=args.workers, host=args.host, port=args.port,
                             graceful_seconds=args.graceful_seconds)
    freeze_startup()
    limits = settings.limits
    # SIGTERM: stop accepting, finish the requests in flight (cancelled after
    # graceful_seconds), then the lifespan's shutdown flushes and closes the audit log.
    uvicorn.run(create_app(settings), host=args.host, port=args.port, access_log=False,
                log_level="warning", server_header=False,
                timeout_graceful_shutdown=args.graceful_seconds,
                http=deadline_protocol(limits.header_read_seconds, limits.body_read_seconds))
    return 0


def _config_check(args: argparse.Namespace) -> int:
    """`contactpoint config check FILE`: everything `serve` checks before it starts."""
    from connectors.manifest import ManifestError
    from connectors.registry import resolve_manifests
    from gateway.web.documents import check_documents

    try:
        settings = check_production(load_settings(args.file))
        manifests = resolve_manifests(settings)
        check_documents(settings)
    except (ConfigError, ManifestError) as exc:
        print(f"contactpoint config check: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    systems = ", ".join(f"{m.name} ({m.kind})" for m in manifests)
    print(f"{args.file}: ok ({settings.mode} mode; systems: {systems})")  # noqa: T201
    return 0


def _demo(args: argparse.Namespace) -> int:
    from gateway.web.demo import fixtures_json, run

    if args.fixtures:
        print(fixtures_json(seed=args.seed, size=args.children))  # noqa: T201
        return 0
    return asyncio.run(run(host=args.host, port=args.port, seed=args.seed,
                           size=args.children, latency_ms=args.latency_ms))


def _amr(args: argparse.Namespace) -> list[str]:
    """`--amr` values (repeatable, comma or space separated), else pwd + mfa, or pwd alone."""
    from gateway.auth.devissuer import DEV_AMR

    if args.no_mfa:
        return ["pwd"]
    if not args.amr:
        return list(DEV_AMR)
    return [v for part in args.amr for v in part.replace(",", " ").split()]


def _dev_token(args: argparse.Namespace) -> int:
    from gateway.auth.devissuer import mint_dev_token

    amr = _amr(args)
    extra: dict[str, object] = {"subject_nhs_number": args.subject_nhs} if args.subject_nhs \
        else {}
    if args.dpop_key:
        from gateway.auth.dpop import load_or_create_key

        # RFC 9449 §6.1: bound to the key's RFC 7638 SHA-256 thumbprint.
        extra["cnf"] = {"jkt": load_or_create_key(args.dpop_key).thumbprint()}
    if args.authority:
        extra["authority"] = args.authority  # with connectors.manage: whose systems it may change
    print(mint_dev_token(subject=args.sub, scopes=args.scope, amr=amr or None,  # noqa: T201
                         organisation=args.org, client_id=args.client, ttl_seconds=args.ttl,
                         roles=args.role, extra_claims=extra or None))
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="contactpoint", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway from a configuration file")
    serve.add_argument("--config", type=Path, default=None,
                       help="TOML configuration (default: $CONTACTPOINT_CONFIG)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=_positive, default=1, metavar="N",
                       help="worker processes accepting on the one socket (default 1); "
                            "[budgets] processes must be at least N unless Redis counts")
    serve.add_argument("--graceful-seconds", type=_positive, default=30, metavar="S",
                       help="on SIGTERM, how long requests in flight may take to finish "
                            "before they are cancelled and the audit log is closed (default 30)")
    serve.set_defaults(run=_serve)

    demo = commands.add_parser("demo", help="gateway + simulated local systems + token issuer")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--fixtures", action="store_true",
                      help="print example children's NHS numbers as JSON and exit")
    demo.add_argument("--seed", type=int, default=2026)
    demo.add_argument("--children", type=int, default=10_000)
    demo.add_argument("--latency-ms", type=float, default=0.0,
                      help="fixed latency added by each simulated system")
    demo.set_defaults(run=_demo)

    token = commands.add_parser("dev-token", help="print a token the demo gateway accepts")
    token.add_argument("--sub", required=True)
    token.add_argument("--scope", required=True, help='space-separated, e.g. "child.identity.read"')
    factors = token.add_mutually_exclusive_group()
    factors.add_argument("--amr", action="append",
                         help='authentication methods (default: "pwd mfa", a multi-factor '
                              "sign-in); without a multi-factor one the gateway refuses it")
    factors.add_argument("--no-mfa", action="store_true",
                         help='a password-only sign-in (amr "pwd"): the gateway refuses it')
    token.add_argument("--org", default="demo-org")
    token.add_argument("--client", default="demo-client")
    token.add_argument("--ttl", type=int, default=600)
    token.add_argument("--role", action="append", help="a role (chooses the budget)")
    token.add_argument("--subject-nhs", help="subject_nhs_number claim, for subject.self")
    token.add_argument("--authority", help='authority claim, e.g. "council:youth_justice": with '
                       "--scope connectors.manage, the systems the token may register")
    token.add_argument("--dpop-key", metavar="FILE",
                       help="bind the token to this PEM EC P-256 private key (RFC 9449 DPoP); "
                            "created, mode 0600, if missing")
    token.set_defaults(run=_dev_token)
    add_audit_parser(commands)
    add_alerts_parser(commands)
    add_connector_parser(commands)
    config = commands.add_parser("config", help="check a configuration without starting")
    config_actions = config.add_subparsers(dest="config_command", required=True)
    check = config_actions.add_parser(
        "check", help="validate settings, manifests and production safety; exit 2 if unfit")
    check.add_argument("file", type=Path, help="TOML configuration")
    check.set_defaults(run=_config_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
