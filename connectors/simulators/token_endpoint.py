"""A simulated OAuth 2.0 token endpoint: the client credentials grant, opaque bearer tokens.

`POST /oauth2/token` with ``grant_type=client_credentials`` and the client
authenticated by HTTP Basic (``client_secret_basic``) or in the form
(``client_secret_post``) answers ``{"access_token", "token_type": "Bearer",
"expires_in", "scope"?}`` (RFC 6749 4.4, 5.1). Errors are RFC 6749 5.2 bodies:
``invalid_client`` (401), ``unsupported_grant_type``, ``invalid_request`` (400).

The `TokenIssuer` behind it is shared with the systems that require its tokens
(`connectors.simulators.protected.require_bearer`): it counts what it issued,
knows which tokens are still valid, and can forget them all (`revoke_all`) so
that a system refuses a token its client still thinks good.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["ISSUER", "TOKEN_PATH", "TokenIssuer", "create_token_app"]

TOKEN_PATH = "/oauth2/token"  # noqa: S105 -- a path, not a password


class TokenIssuer:
    """Issues opaque tokens to known clients, each valid `expires_in` seconds.

    `expires_in` may be changed between requests (the next token gets the new
    lifetime). `issued` counts tokens issued; `refused` counts refused requests.
    """

    def __init__(self, clients: Mapping[str, str], *, expires_in: int = 300,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._clients = dict(clients)
        self.expires_in = expires_in
        self._clock = clock
        self._valid: dict[str, float] = {}
        self.issued = 0
        self.refused = 0

    def authenticate(self, client_id: str, secret: str) -> bool:
        """True if `secret` is the client's (compared in constant time)."""
        known = self._clients.get(client_id)
        return known is not None and hmac.compare_digest(known.encode(), secret.encode())

    def issue(self) -> str:
        token = secrets.token_urlsafe(24)
        now = self._clock()
        self._valid = {t: until for t, until in self._valid.items() if until > now}
        self._valid[token] = now + self.expires_in
        self.issued += 1
        return token

    def valid(self, token: str) -> bool:
        """True if `token` was issued here, is not revoked and has not expired."""
        until = self._valid.get(token)
        return until is not None and self._clock() < until

    def revoke_all(self) -> None:
        """Forget every token: systems refuse them from now on (their clients must renew)."""
        self._valid.clear()


ISSUER = web.AppKey("token_issuer", TokenIssuer)


def create_token_app(issuer: TokenIssuer) -> web.Application:
    """The token endpoint app, issuing `issuer`'s tokens at `POST /oauth2/token`."""
    app = web.Application()
    app[ISSUER] = issuer
    app.router.add_post(TOKEN_PATH, _token)
    return app


def _error(status: int, error: str, **headers: str) -> web.Response:
    return web.json_response({"error": error}, status=status,
                             headers={"Cache-Control": "no-store", **headers})


async def _token(request: web.Request) -> web.Response:
    issuer = request.app[ISSUER]
    if request.content_type != "application/x-www-form-urlencoded":
        return _error(400, "invalid_request")
    form = await request.post()
    client = _client(request.headers.get("Authorization"), form)
    if client is None or not issuer.authenticate(*client):
        issuer.refused += 1
        return _error(401, "invalid_client", **{"WWW-Authenticate": 'Basic realm="token"'})
    if form.get("grant_type") != "client_credentials":
        issuer.refused += 1
        return _error(400, "unsupported_grant_type")
    answer: dict[str, object] = {"access_token": issuer.issue(), "token_type": "Bearer",
                                 "expires_in": issuer.expires_in}
    scope = form.get("scope")
    if isinstance(scope, str):
        answer["scope"] = scope
    return web.json_response(answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _client(authorization: str | None, form: Mapping[str, object]) -> tuple[str, str] | None:
    """(client_id, secret) from HTTP Basic or the form; None if neither or both."""
    in_form = form.get("client_id"), form.get("client_secret")
    if authorization is not None:
        if any(in_form):
            return None  # RFC 6749 2.3: one method per request
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            client_id, colon, secret = base64.b64decode(encoded, validate=True).decode(
                "utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return (client_id, secret) if colon else None
    form_id, form_secret = in_form
    if isinstance(form_id, str) and isinstance(form_secret, str):
        return form_id, form_secret
    return None
