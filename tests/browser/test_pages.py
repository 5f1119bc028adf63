"""The development pages without a browser: documents, asset integrity, who may mint tokens."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import httpx
import pytest

from gateway.settings import build_settings
from gateway.web.app import create_app
from gateway.web.demo import demo_settings
from gateway.web.pages import (
    DASHBOARD_DOCUMENTS,
    GRAPHIQL_ASSETS,
    STATIC,
    graphiql_installed,
)
from tests.browser import documents
from tests.integration.harness import settings_tree

URLS = {n: f"http://127.0.0.1:{p}" for n, p in
        (("gp", 1), ("school", 2), ("council", 3), ("youth_justice", 4))}


def test_the_manifest_holds_each_document_under_its_sha256():
    manifest = json.loads(DASHBOARD_DOCUMENTS.read_text(encoding="utf-8"))
    assert manifest, "no trusted documents"
    for key, text in manifest.items():
        assert key == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert DASHBOARD_DOCUMENTS.read_text(encoding="utf-8") == documents.manifest_text(), \
        "persisted-documents.json is stale: run python -m tests.browser.documents"


def test_the_dashboard_sends_only_ids_from_the_manifest():
    manifest = json.loads(DASHBOARD_DOCUMENTS.read_text(encoding="utf-8"))
    script = documents.SCRIPT.read_text(encoding="utf-8")
    assert script == documents.script_text(), \
        "documents.js is stale: run python -m tests.browser.documents"
    ids = set(re.findall(r"sha256:([0-9a-f]{64})", script))
    assert ids == set(manifest)
    code = "".join(p.read_text(encoding="utf-8") for p in DASHBOARD_DOCUMENTS.parent.glob("*.js"))
    # Documents travel only by id: no GraphQL text in any script, no `query` member sent.
    assert not re.search(r"\bquery\s*[:({]", code.replace("querySelector", ""))
    assert "documentId" in code


def test_graphiql_page_pins_each_asset_by_integrity():
    page = (STATIC / "graphiql" / "index.html").read_text(encoding="utf-8")
    pinned = dict(re.findall(r'/graphiql/assets/([\w.-]+)"\s+integrity="sha384-([^"]+)"', page))
    assert pinned == {name: digest for name, (_, digest) in GRAPHIQL_ASSETS.items()}
    assert "https://" not in page
    assert "//unpkg" not in page


@pytest.mark.skipif(not graphiql_installed(), reason="GraphiQL's assets: run scripts/bootstrap")
def test_installed_graphiql_assets_are_the_published_files():
    folder = STATIC / "graphiql" / "node_modules"
    for path, digest in GRAPHIQL_ASSETS.values():
        actual = base64.b64encode(hashlib.sha384((folder / path).read_bytes()).digest()).decode()
        assert actual == digest, path


def demo_app():
    return create_app(demo_settings(URLS, "http://127.0.0.1:5/jwks.json", None))


async def call(app, method, path, **kwargs):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        return await client.request(method, path, **kwargs)


async def test_the_dashboard_and_its_files_are_served_in_development():
    app = demo_app()
    page = await call(app, "GET", "/dashboard")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    script = await call(app, "GET", "/dashboard/static/dashboard.js")
    assert script.headers["content-type"].startswith("text/javascript")
    for path in ("/dashboard/static/index.html", "/dashboard/static/..%2Fpages.py",
                 "/dashboard/static/documents", "/graphiql/assets/package.json",
                 "/graphiql/package-lock.json"):
        assert (await call(app, "GET", path)).status_code == 404, path


async def test_the_demo_mints_tokens_for_its_own_pages_only():
    app, body = demo_app(), {"scopes": ["child.identity.read"]}
    minted = await call(app, "POST", "/dashboard/dev-token", json=body,
                        headers={"Origin": "http://127.0.0.1:8000"})
    assert minted.status_code == 200
    assert minted.json()["token"].count(".") == 2
    for headers, status in [
        ({"Origin": "http://127.0.0.1:9999"}, 403),       # another loopback page
        ({"Origin": "https://evil.example"}, 403),
        ({"Host": "rebound.example:8000"}, 403),          # DNS rebinding
    ]:
        response = await call(app, "POST", "/dashboard/dev-token", json=body, headers=headers)
        assert response.status_code == status, headers
    for bad in ({"scopes": ["audit.read"]}, {"scopes": []}, {"scopes": "child.identity.read"}):
        assert (await call(app, "POST", "/dashboard/dev-token", json=bad)).status_code == 400
    form = await call(app, "POST", "/dashboard/dev-token", data={"scopes": "x"})
    assert form.status_code == 415


async def test_production_has_no_pages_and_no_minting():
    tree = settings_tree(URLS, "https://issuer.test.invalid/jwks.json")
    app = create_app(build_settings(tree))
    for method, path in (("GET", "/dashboard"), ("GET", "/dashboard/static/dashboard.js"),
                         ("GET", "/graphiql/assets/graphiql.min.js"),
                         ("POST", "/dashboard/dev-token")):
        assert (await call(app, method, path)).status_code in (404, 405), path
