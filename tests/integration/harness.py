"""The gateway wired to real parts: simulators on loopback, a real JWKS, real Redis.

`Gateway` drives the ASGI app through httpx's ASGITransport with its
lifespan running, and mints tokens signed with a real ES256 key that the
JWKS server publishes.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gateway.settings import build_settings
from gateway.web.app import create_app
from tests.auth.helpers import AUDIENCE, ISSUER, make_token

ALL_SCOPES = ("child.identity.read child.contact.read child.education.read child.health.read "
              "child.services.read child.sensitive.read child.shielded.read")
# scripts/test passes $REDIS_URL on; the default keeps test keys out of database 0.
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/1")
SYSTEMS = ("gp", "school", "council", "youth_justice")
CHILD_FIELDS = """id nhsNumber name { given family } dateOfBirth gender shielded
  address { lines postcode }
  carers { name { given family } relationship phone address { lines postcode } }
  education { school { name code phone address { lines postcode } } }
  primaryCare { practice { name code phone address { lines postcode } } }
  services { kind name sensitive contact }
  sources { connector status fromCache }"""
CHILD_QUERY = ("query($id: ID!, $purpose: Purpose!, $case: String) {"
               f" child(id: $id, purpose: $purpose, caseReference: $case) {{ {CHILD_FIELDS} }} }}")
FIND_QUERY = ("query($s: ChildSearch!) { findChildren(search: $s, purpose: SAFEGUARDING)"
              " { id name { given family } dateOfBirth } }")


def settings_tree(urls: dict[str, str], jwks_url: str, **overrides: Any) -> dict[str, Any]:
    tree: dict[str, Any] = {
        "auth": {"issuer": ISSUER, "audience": AUDIENCE, "jwks_url": jwks_url},
        # A generous Redis deadline (production's is 0.25 s): a loaded CI machine that
        # stalls a quarter of a second would otherwise send a test that expects a warm
        # cache down the fallback path. Tests of the fallback set their own.
        "cache": {"redis_url": REDIS_URL, "key_prefix": f"t{uuid.uuid4().hex[:12]}:",
                  "secret": "test-cache-secret-" + "c" * 32, "redis_retry_seconds": 30,
                  "redis_timeout_seconds": 2.0},
        "ids": {"secret": "test-id-secret-" + "i" * 32},
        # A generous audit deadline too (production's is 2 s), for the same reason: one
        # CI run stalled a commit past 2 s and a property example got AUDIT_UNAVAILABLE.
        # Tests of an audit store that is down set their own.
        "audit": {"store": "sqlite", "pseudonym_secret": "test-audit-secret-" + "a" * 32,
                  "timeout_seconds": 10.0},
        "alerts": {"path": "alerts.jsonl"},
        # Partner agencies' own documents: tests send arbitrary ones, so not trusted-only.
        "documents": {"trusted_only": False},
        "connectors": [{"name": n, "manifest": n, "base_url": urls[n], "timeout_seconds": 1.0}
                       for n in SYSTEMS],
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(tree.get(key), dict):
            tree[key] = {**tree[key], **value}
        else:
            tree[key] = value
    return tree


@dataclass
class Gateway:
    """A running gateway app plus the parts it talks to."""

    client: httpx.AsyncClient
    app: Any
    sims: Any
    key: Any
    fixtures: dict[str, str]
    settings: Any
    client_id: str = "client-a"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime

    def token(self, scopes: str = ALL_SCOPES, *, client_id: str | None = None,
              **claims: Any) -> str:
        values = {"scope": scopes, "client_id": client_id or self.client_id, **claims}
        return make_token(self.key, time.time(), claims=values)

    async def post(self, body: Any, *, token: str | None = None,
                   headers: dict[str, str] | None = None) -> httpx.Response:
        """POST to /graphql; returns once the request's cache writes, posted after it, landed.

        So a test that then reads Redis itself sees what the request left there. (A
        gateway in another process, `app` None, is not waited for.)
        """
        all_headers = {"Authorization": f"Bearer {token or self.token()}", **(headers or {})}
        response = await self.client.post("/graphql", json=body, headers=all_headers)
        if self.app is not None:
            await self.runtime.store.settle()
        return response

    async def gql(self, query: str, variables: dict[str, Any] | None = None, *,
                  scopes: str = ALL_SCOPES, client_id: str | None = None,
                  token: str | None = None) -> dict[str, Any]:
        token = token or self.token(scopes, client_id=client_id)
        response = await self.post({"query": query, "variables": variables or {}}, token=token)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def id_for(self, nhs: str, client_id: str | None = None) -> str:
        return str(self.runtime.services.ids.encode(nhs, client_id or self.client_id))

    async def child(self, fixture_or_nhs: str, *, scopes: str = ALL_SCOPES,
                    purpose: str = "SAFEGUARDING", case: str | None = "CASE-1",
                    fields: str | None = None) -> dict[str, Any]:
        nhs = self.fixtures.get(fixture_or_nhs, fixture_or_nhs)
        query = CHILD_QUERY if fields is None else (
            "query($id: ID!, $purpose: Purpose!, $case: String) {"
            f" child(id: $id, purpose: $purpose, caseReference: $case) {{ {fields} }} }}")
        return await self.gql(query, {"id": self.id_for(nhs), "purpose": purpose, "case": case},
                              scopes=scopes)


@contextlib.asynccontextmanager
async def running_gateway(sims: Any, jwks: Any, key: Any, **overrides: Any) -> Any:
    """The gateway with an audit log (SQLite) and alert file in a fresh temporary folder."""
    with tempfile.TemporaryDirectory(prefix="cpg-test-") as folder:
        tree = settings_tree(sims.urls(), jwks.url, **overrides)
        tree["audit"].setdefault("sqlite_path", str(Path(folder) / "audit.db"))
        tree["audit"].setdefault("checkpoint_file", str(Path(folder) / "checkpoints.jsonl"))
        tree.setdefault("outbox", {}).setdefault("sqlite_path", str(Path(folder) / "outbox.db"))
        if tree["alerts"]["path"] == "alerts.jsonl":
            tree["alerts"]["path"] = str(Path(folder) / "alerts.jsonl")
        async with _serving(build_settings(tree), sims, key) as gateway:
            yield gateway


@contextlib.asynccontextmanager
async def _serving(settings: Any, sims: Any, key: Any) -> Any:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield Gateway(client, app, sims, key, sims.population.fixtures(), settings)


def errors_by_path(body: dict[str, Any]) -> dict[str, str]:
    """`{"child.address": "SHIELDED", ...}` for every error with a path."""
    return {".".join(str(p) for p in e["path"]): e["extensions"]["code"]
            for e in body.get("errors", []) if e.get("path")}
