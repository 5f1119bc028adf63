"""`contactpoint connector check`: the conformance kit a council runs against its own system.

    contactpoint connector check MANIFEST [--base-url URL] [--nhs NUMBER ...]
                                 [--unknown-nhs NUMBER]

prints one line per check, ``PASS <check>: <reason>`` or ``FAIL <check>:
<reason>`` (see `connectors.conformance`), then a summary line. Exit status:
0 when every check passes, 1 when any fails, 2 for bad usage. `gateway.web.cli`
adds the sub-command with `add_connector_parser` (the one entry point).
"""

from __future__ import annotations

import argparse
import asyncio
import re

from connectors.conformance import CHECK_NAMES, DEFAULT_UNKNOWN_NHS, run_checks
from gateway.core.nhs import is_valid_nhs_number, normalise_nhs_number

__all__ = ["add_connector_parser", "run_connector_check"]

_URL = re.compile(r"^https?://[^\s/]+")


def _nhs_number(text: str) -> str:
    number = normalise_nhs_number(text.strip())
    if not is_valid_nhs_number(number):
        raise argparse.ArgumentTypeError(f"not a valid NHS number: {text!r}")
    return number


def _base_url(text: str) -> str:
    if not _URL.match(text):
        raise argparse.ArgumentTypeError(f"expected an http:// or https:// URL: {text!r}")
    return text


def _say(line: str) -> None:
    print(line)  # noqa: T201 -- the report is the command's output


def run_connector_check(args: argparse.Namespace) -> int:
    """Run the checks `args` describe and print them; 0 if all pass, else 1."""
    results = asyncio.run(run_checks(args.manifest, args.base_url, args.nhs, args.unknown_nhs))
    for result in results:
        _say(result.line())
    failures = [result.name for result in results if not result.passed]
    if failures:
        _say(f"connector check failed: {len(failures)} of {len(results)} checks failed "
             f"({', '.join(failures)})")
        return 1
    _say(f"connector check passed: all {len(results)} checks passed")
    return 0


def add_connector_parser(
        commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add ``connector check`` to `commands`; the parsed namespace's ``run(args)`` runs it."""
    connector = commands.add_parser("connector", help="work with local systems' connectors")
    actions = connector.add_subparsers(dest="connector_command", required=True)
    check = actions.add_parser(
        "check", help="check a local system against its manifest before registering it",
        description=f"Run the conformance checks ({', '.join(CHECK_NAMES)}) against a local "
                    "system; exit 0 only when every check passes.")
    check.add_argument("manifest", metavar="MANIFEST",
                       help="a built-in manifest's name (e.g. council) or a .toml file")
    check.add_argument("--base-url", type=_base_url, default=None, metavar="URL",
                       help="where the system answers (default: the manifest's base_url)")
    check.add_argument("--nhs", type=_nhs_number, action="append", default=[], metavar="NUMBER",
                       help="NHS number of a child the system knows (repeatable; at least one "
                            "is needed to pass)")
    check.add_argument("--unknown-nhs", type=_nhs_number, default=None, metavar="NUMBER",
                       help="a valid NHS number the system does not know "
                            f"(default: {DEFAULT_UNKNOWN_NHS})")
    check.set_defaults(run=run_connector_check)
    return connector
