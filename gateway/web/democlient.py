"""`python -m gateway.web.democlient`: find a demo child (`--fixture`: ordinary), print it.

Shows the two calls a partner agency makes (findChildren, then child) against
a running `contactpoint demo` (`--port`, default 8000, as the demo's), with a development
token; with `--dpop-key FILE` the token is bound to that key and each request carries a
DPoP proof (RFC 9449). When nothing answers it says so, and exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any

from gateway.auth.devissuer import mint_dev_token
from gateway.auth.dpop import load_or_create_key, make_proof
from gateway.web.demo import DEMO_SCOPES, fixtures_json

if TYPE_CHECKING:
    from joserfc.jwk import ECKey

FIND = """query Find($search: ChildSearch!) {
  findChildren(search: $search, purpose: SAFEGUARDING) { id name { given family } dateOfBirth }
}"""
RECORD = """query Record($id: ID!) {
  child(id: $id, purpose: SAFEGUARDING, caseReference: "DEMO-1") {
    name { given family } dateOfBirth shielded
    address { lines postcode }
    carers { name { given family } relationship phone }
    education { school { name code phone } }
    primaryCare { practice { name code phone } }
    services { kind name contact source sources }
    sources { connector status fromCache }
    provenance { field sources disagreeing unavailable }
  }
}"""


def _post(url: str, token: str, query: str, variables: dict[str, Any],
          dpop_key: ECKey | None = None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    if dpop_key is not None:
        headers["Authorization"] = f"DPoP {token}"
        headers["DPoP"] = make_proof(dpop_key, "POST", url, token)  # one proof per request
    request = urllib.request.Request(  # noqa: S310 -- the URL is the local demo's, given by the user
        url, data=json.dumps({"query": query, "variables": variables}).encode(), headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        body: dict[str, Any] = json.load(response)
    return body


class _NoAnswerError(Exception):
    """Nothing listens at the URL, or it answered something other than GraphQL."""


def _ask(url: str, token: str, query: str, variables: dict[str, Any],
         dpop_key: ECKey | None) -> dict[str, Any]:
    try:
        return _post(url, token, query, variables, dpop_key)
    except urllib.error.HTTPError as exc:  # an answer, but not a GraphQL result
        raise _NoAnswerError(f"{url} answered HTTP {exc.code}: "
                             f"{exc.read(500).decode(errors='replace').strip()}") from None
    except (urllib.error.URLError, OSError):
        origin = urllib.parse.urlsplit(url)._replace(path="", query="", fragment="").geturl()
        raise _NoAnswerError(f"Nothing answers at {origin} \u2014 is the demo running? "
                             "(scripts/demo)") from None


def _url(args: argparse.Namespace) -> str:
    return args.url or f"http://127.0.0.1:{args.port}/graphql"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8000,
                        help="the demo's port (contactpoint demo --port; default 8000)")
    parser.add_argument("--url", default=None,
                        help="the GraphQL endpoint (default http://127.0.0.1:PORT/graphql)")
    parser.add_argument("--fixture", default="ordinary",
                        help="which example child (contactpoint demo --fixtures lists them)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--children", type=int, default=10_000)
    parser.add_argument("--dpop-key", metavar="FILE",
                        help="PEM EC P-256 private key (created if missing): use DPoP")
    args = parser.parse_args()
    fixtures = json.loads(fixtures_json(args.seed, args.children))
    if args.fixture not in fixtures:
        parser.error(f"--fixture: choose one of {', '.join(fixtures)}")
    nhs = fixtures[args.fixture]
    key = load_or_create_key(args.dpop_key) if args.dpop_key else None
    extra = None if key is None else {"cnf": {"jkt": key.thumbprint()}}
    token = mint_dev_token("demo-practitioner", DEMO_SCOPES, organisation="demo-org",
                           client_id="demo-client", ttl_seconds=300, extra_claims=extra)
    try:
        found = _ask(_url(args), token, FIND, {"search": {"nhsNumber": nhs}}, key)
        print(json.dumps(found, indent=2))  # noqa: T201
        matches = (found.get("data") or {}).get("findChildren") or []
        if not matches:
            return 1
        record = _ask(_url(args), token, RECORD, {"id": matches[0]["id"]}, key)
    except _NoAnswerError as exc:
        print(exc, file=sys.stderr)  # noqa: T201
        return 1
    print(json.dumps(record, indent=2))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
