"""Protected variants of the simulated systems: a bearer token, an API key, a client certificate.

Each wraps an app made by `create_council_app` (or any simulated system)
before it is served:

- `require_bearer`: every route but `/_sim/...` answers 401 without
  ``Authorization: Bearer <token>`` naming a token its `TokenIssuer` issued
  and still holds valid.
- `require_header`: the same for a static header (an API key).
- `client_certificate_required`: the server SSL context of a system that
  refuses a TLS connection without a client certificate signed by a given CA;
  serve the app with it (`serve_simulator(..., ssl_context=...)`).
"""

from __future__ import annotations

import collections
import hmac
import ssl
from typing import TYPE_CHECKING

from aiohttp import web

from connectors.simulators.server import ADMIN_PREFIX

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from aiohttp.typedefs import Handler

    from connectors.simulators.token_endpoint import TokenIssuer

__all__ = ["REFUSED", "client_certificate_required", "require_bearer", "require_header"]

REFUSED = web.AppKey("refused", collections.Counter[str])
"""Requests a protected system refused, by reason (``"missing"``, ``"invalid"``)."""


def require_bearer(app: web.Application, issuer: TokenIssuer) -> web.Application:
    """`app`, answering 401 to any request without a valid bearer token of `issuer`."""

    def check(request: web.Request) -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return "missing"
        return None if issuer.valid(token) else "invalid"

    return _protect(app, check, 'Bearer realm="simulator"')


def require_header(app: web.Application, name: str, value: str) -> web.Application:
    """`app`, answering 401 to any request whose header `name` is not `value`."""

    def check(request: web.Request) -> str | None:
        sent = request.headers.get(name)
        if sent is None:
            return "missing"
        return None if hmac.compare_digest(sent.encode(), value.encode()) else "invalid"

    return _protect(app, check, f'ApiKey header="{name}"')


def _protect(app: web.Application, check: Callable[[web.Request], str | None],
             challenge: str) -> web.Application:
    app[REFUSED] = collections.Counter()

    @web.middleware
    async def authenticated(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(ADMIN_PREFIX):
            return await handler(request)
        reason = check(request)
        if reason is not None:
            app[REFUSED][reason] += 1
            return web.json_response({"error": "unauthorized"}, status=401,
                                     headers={"WWW-Authenticate": challenge})
        return await handler(request)

    # After the knob middleware: a system that is down refuses nothing, it is just down.
    app.middlewares.append(authenticated)
    return app


def client_certificate_required(cert_file: Path, key_file: Path,
                                client_ca_file: Path) -> ssl.SSLContext:
    """A server SSL context that completes a handshake only with a client certificate
    signed by the CA in `client_ca_file` (`verify_mode = CERT_REQUIRED`)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(client_ca_file))
    context.load_cert_chain(str(cert_file), str(key_file))
    context.verify_mode = ssl.CERT_REQUIRED
    return context
