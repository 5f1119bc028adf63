"""`contactpoint alerts digest`: an organisation's daily digest on demand.

Prints each organisation's digest for a day as JSON lines and, unless
`--print-only`, sends them to the configured alert sink, whether or not the
gateway already sent that day's (an operator asking gets an answer). Exit 0,
or 2 with one line on stderr when it cannot run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import redis.asyncio as aioredis

from gateway.accountability.audit import open_store
from gateway.accountability.audit.store import StoreError
from gateway.accountability.digest import REDIS_FAILURES, Digester, DigestTally, london_day
from gateway.alerts import open_alert_sink
from gateway.crypto.pseudonyms import Pseudonymiser
from gateway.settings import ConfigError, load_settings

if TYPE_CHECKING:
    import argparse

    from gateway.settings import Settings

__all__ = ["add_alerts_parser", "digest_command"]


async def _digest(settings: Settings, day: dt.date, *, send: bool) -> None:
    cache = settings.cache
    client = None if cache.redis_url is None else aioredis.Redis.from_url(
        cache.redis_url, socket_timeout=cache.redis_timeout_seconds,
        socket_connect_timeout=cache.redis_timeout_seconds)
    store = open_store(settings.audit, read_only=True)
    sink = open_alert_sink(settings.alerts, Pseudonymiser(settings.ids.secret.get_secret_value()))
    tally = DigestTally(sink, client, cache.key_prefix, cache.secret.get_secret_value())
    try:
        digester = Digester(store, tally, client)
        digests = await (digester.send(day, once=False) if send else digester.build(day))
        now = dt.datetime.now(dt.UTC)
        for digest in digests:
            sys.stdout.write(json.dumps(digest.alert(now).to_json(), sort_keys=True) + "\n")
    finally:
        await tally.close()
        await store.close()
        if client is not None:
            await client.aclose()


def _settings(config: Path | None) -> Settings:
    settings = load_settings(config)
    if settings.audit.store == "none":
        raise ConfigError('audit.store is "none": there is no log to count')
    return settings


def digest_command(config: Path | None, day: dt.date | None, *, send: bool = True) -> int:
    """Print (and send) the digests of `day` (default: yesterday in England)."""
    try:
        settings = _settings(config)
        chosen = day or london_day(dt.datetime.now(dt.UTC)) - dt.timedelta(days=1)
        asyncio.run(_digest(settings, chosen, send=send))
    except (ConfigError, StoreError, *REDIS_FAILURES) as exc:
        sys.stderr.write(f"contactpoint alerts digest: {exc}\n")
        return 2
    return 0


def _date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def _run(args: argparse.Namespace) -> int:
    return digest_command(args.config, args.date, send=not args.print_only)


def add_alerts_parser(
        commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add ``alerts digest`` to `commands`; ``run(args)`` runs it."""
    alerts = commands.add_parser("alerts", help="the privacy officer's alerts")
    actions = alerts.add_subparsers(dest="alerts_command", required=True)
    digest = actions.add_parser("digest", help="each organisation's counts for one day")
    digest.add_argument("--date", type=_date, default=None,
                        help="YYYY-MM-DD, a day in England (default: yesterday)")
    digest.add_argument("--config", type=Path, default=None,
                        help="TOML configuration (default: $CONTACTPOINT_CONFIG)")
    digest.add_argument("--print-only", action="store_true",
                        help="print the digests without sending them to the alert sink")
    alerts.set_defaults(run=_run)
    return alerts
