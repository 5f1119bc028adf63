"""Development pages: offline GraphiQL, the example dashboard and the demo's token minting.

None of these routes exists in production (`create_app` adds them only in
development mode). GraphiQL's built assets come from the npm registry, pinned by
`static/graphiql/package-lock.json` and installed by `scripts/bootstrap`
(`npm ci --ignore-scripts`) into a git-ignored `node_modules`; nothing is
loaded from a CDN, and the page pins each asset's SHA-384 (subresource
integrity), so a tampered install does not run.

The dashboard is plain HTML and ES modules that call only the public
`/graphql` endpoint with trusted documents (`documentId`).
"""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Final

from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from gateway.auth.devissuer import DEV_ISSUER, mint_dev_token
from gateway.settings import SCOPES

if TYPE_CHECKING:
    from starlette.requests import Request

    from gateway.settings import Settings

__all__ = ["DASHBOARD_DOCUMENTS", "GRAPHIQL_ASSETS", "STATIC", "development_routes",
           "graphiql_page"]

STATIC: Final = Path(__file__).parent / "static"
DASHBOARD: Final = STATIC / "dashboard"
DASHBOARD_DOCUMENTS: Final = DASHBOARD / "persisted-documents.json"
"""The dashboard's trusted documents (`{sha256 hex: document}`), for `[documents] manifest`."""
_GRAPHIQL: Final = STATIC / "graphiql"
_NODE_MODULES: Final = _GRAPHIQL / "node_modules"

GRAPHIQL_ASSETS: Final = {
    # served name: (path under node_modules, SHA-384 of the published file)
    "graphiql.min.js": ("graphiql/graphiql.min.js",
                        "HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie"),
    "graphiql.min.css": ("graphiql/graphiql.min.css",
                         "Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM"),
    "react.production.min.js": ("react/umd/react.production.min.js",
                                "tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8"),
    "react-dom.production.min.js": (
        "react-dom/umd/react-dom.production.min.js",
        "bm7MnzvK++ykSwVJ2tynSE5TRdN+xL418osEVF2DE/L/gfWHj91J2Sphe582B1Bh"),
}
"""GraphiQL 3.8.3 and React 18.2.0, the versions `package-lock.json` pins."""

_PAGE_HEADERS: Final = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                        "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
# GraphiQL sets inline styles (editor sizes) and shows data: icons.
_GRAPHIQL_CSP: Final = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline';"
                        " img-src 'self' data:; font-src 'self' data:; connect-src 'self';"
                        " frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
_DASHBOARD_CSP: Final = ("default-src 'none'; script-src 'self'; style-src 'self';"
                         " connect-src 'self'; img-src 'self' data:; frame-ancestors 'none';"
                         " base-uri 'none'; form-action 'none'")
_MISSING: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>GraphiQL is not installed</title></head>
<body><main><h1>GraphiQL's assets are not installed</h1>
<p>They come from the npm registry, pinned by
<code>gateway/web/static/graphiql/package-lock.json</code>. Run <code>scripts/bootstrap</code>
(it runs <code>npm ci --ignore-scripts</code> there), then reload this page.</p>
<p>Meanwhile, <code>POST /graphql</code> works as usual, and the example dashboard is at
<a href="/dashboard">/dashboard</a>.</p></main></body></html>
"""
_PAGE_FILES: Final = {"graphiql-page.js": "text/javascript", "graphiql-page.css": "text/css"}
_DASHBOARD_TYPES: Final = {".js": "text/javascript", ".css": "text/css",
                           ".json": "application/json"}
DEV_TOKEN_TTL_SECONDS: Final = 600
DEV_TOKEN_SUBJECT: Final = "dashboard-demo-user"  # noqa: S105 -- a subject, not a secret
_HOST: Final = re.compile(
    r"\[(?P<ipv6>[0-9A-Fa-f:.]+)\](?::[0-9]{1,5})?|(?P<name>[^:\[\]]+)(?::[0-9]{1,5})?")


def graphiql_installed() -> bool:
    """Whether every GraphiQL asset is on disk (scripts/bootstrap installs them)."""
    return all((_NODE_MODULES / path).is_file() for path, _ in GRAPHIQL_ASSETS.values())


def graphiql_page() -> Response:
    """GraphiQL, served from this gateway alone; a page saying how to install it if missing."""
    if not graphiql_installed():
        return HTMLResponse(_MISSING, 503, headers=_PAGE_HEADERS)
    headers = {**_PAGE_HEADERS, "Content-Security-Policy": _GRAPHIQL_CSP}
    return FileResponse(_GRAPHIQL / "index.html", headers=headers, media_type="text/html")


async def _graphiql_asset(request: Request) -> Response:
    entry = GRAPHIQL_ASSETS.get(request.path_params["name"])
    path = None if entry is None else _NODE_MODULES / entry[0]
    if path is None or not path.is_file():
        return Response("Not found.", 404, media_type="text/plain")
    return FileResponse(path, headers={"Cache-Control": "max-age=3600",
                                       "X-Content-Type-Options": "nosniff"})


async def _graphiql_page_file(request: Request) -> Response:
    name = request.path_params["name"]
    media_type = _PAGE_FILES.get(name)
    if media_type is None:
        return Response("Not found.", 404, media_type="text/plain")
    return FileResponse(_GRAPHIQL / name, media_type=media_type,
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


async def _dashboard(_: Request) -> Response:
    headers = {**_PAGE_HEADERS, "Content-Security-Policy": _DASHBOARD_CSP}
    return FileResponse(DASHBOARD / "index.html", headers=headers, media_type="text/html")


async def _dashboard_file(request: Request) -> Response:
    """One of the dashboard's own files (scripts, styles, the documents manifest), by name."""
    name = request.path_params["name"]
    media_type = _DASHBOARD_TYPES.get(Path(name).suffix)
    path = DASHBOARD / name
    if media_type is None or path.parent != DASHBOARD or not path.is_file():
        return Response("Not found.", 404, media_type="text/plain")
    return FileResponse(path, media_type=media_type,
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


def _is_loopback_host(host: str) -> bool:
    match = _HOST.fullmatch(host)
    if match is None:
        return False
    name = (match["ipv6"] or match["name"]).lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _same_origin(request: Request) -> bool:
    """Whether the request comes from this gateway's own pages, addressed by a loopback name.

    A loopback `Host` defeats DNS rebinding (a hostile page whose name later
    points at 127.0.0.1); a matching `Origin` keeps other pages, loopback ones
    included, from minting (CORS would let them read the answer).
    """
    host = request.headers.get("host", "")
    origin = request.headers.get("origin")
    return _is_loopback_host(host) and (origin is None or origin == f"http://{host}")


async def _dev_token(request: Request) -> Response:
    """Mint a short-lived development token with the scopes asked for (demo only)."""
    if not _same_origin(request):
        return JSONResponse({"error": "Only this gateway's own pages may ask for a token."}, 403)
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return JSONResponse({"error": "Send application/json."}, 415)
    try:
        body = json.loads(await request.body())
    except ValueError:
        body = None
    scopes = body.get("scopes") if isinstance(body, dict) else None
    if (not isinstance(scopes, list) or not scopes
            or not all(isinstance(s, str) and s in SCOPES for s in scopes)):
        return JSONResponse({"error": f"`scopes`: a non-empty list of {', '.join(SCOPES)}."},
                            400)
    token = mint_dev_token(DEV_TOKEN_SUBJECT, " ".join(dict.fromkeys(scopes)), amr=["mfa"],
                           ttl_seconds=DEV_TOKEN_TTL_SECONDS)
    return JSONResponse({"token": token, "expiresIn": DEV_TOKEN_TTL_SECONDS,
                         "subject": DEV_TOKEN_SUBJECT},
                        headers={"Cache-Control": "no-store"})


def development_routes(settings: Settings) -> list[Route]:
    """The dashboard, its files and GraphiQL's assets; token minting with the dev issuer only."""
    routes = [
        Route("/dashboard", _dashboard, methods=["GET"]),
        Route("/dashboard/static/{name}", _dashboard_file, methods=["GET"]),
        Route("/graphiql/{name}", _graphiql_page_file, methods=["GET"]),
        Route("/graphiql/assets/{name}", _graphiql_asset, methods=["GET"]),
    ]
    if settings.auth.issuer == DEV_ISSUER:
        # The development issuer's key is public (gateway/auth/devissuer.py): minting here
        # grants nothing `contactpoint dev-token` does not, and exists only in development.
        routes.append(Route("/dashboard/dev-token", _dev_token, methods=["POST"]))
    return routes
