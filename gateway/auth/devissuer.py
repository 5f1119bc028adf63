"""The development token issuer behind `contactpoint demo` and `contactpoint dev-token`.

Its ES256 key is derived from a seed in this file, so the demo gateway and a
separate `dev-token` process agree on it without sharing state. That also
means anyone can sign with it: `TokenValidator` refuses this key unless told
it runs in development mode.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import time
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.jwk import ECKey

from gateway.settings import DEVELOPMENT_ISSUER, AuthSettings

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "DEV_AMR",
    "DEV_AUDIENCE",
    "DEV_CLIENT_ID",
    "DEV_ISSUER",
    "DEV_TOKEN_TTL_SECONDS",
    "JWKS_PATH",
    "create_jwks_app",
    "dev_auth_settings",
    "dev_jwks",
    "dev_key",
    "mint_dev_token",
]

DEV_ISSUER: Final = DEVELOPMENT_ISSUER
DEV_AUDIENCE: Final = "contactpoint-gateway"
DEV_CLIENT_ID: Final = "contactpoint-dev-client"
DEV_TOKEN_TTL_SECONDS: Final = 600
JWKS_PATH: Final = "/.well-known/jwks.json"
DEV_AMR: Final = ("pwd", "mfa")
"""A password and a second factor (RFC 8176): what a real multi-factor sign-in shows."""

# Public on purpose: this seed makes the key reproducible, not secret.
_DEV_SEED: Final = (
    "contactpoint-gateway development issuer: not a secret, never trusted in production"
)
# The order n of the P-256 group (SEC 2, §2.4.2); the scalar must lie in [1, n - 1].
_P256_ORDER: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


@functools.cache
def dev_key() -> ECKey:
    """The development issuer's private P-256 key; its `kid` is its RFC 7638 thumbprint."""
    digest = hashlib.sha256(_DEV_SEED.encode()).digest()
    scalar = int.from_bytes(digest, "big") % (_P256_ORDER - 1) + 1
    private = ec.derive_private_key(scalar, ec.SECP256R1())
    kid = ECKey.import_key(private.public_key()).thumbprint()
    return ECKey.import_key(private, {"kid": kid, "use": "sig", "alg": "ES256"})


def dev_jwks() -> dict[str, Any]:
    """The development issuer's JWK Set: its one public key, no private members."""
    return {"keys": [dev_key().as_dict(private=False)]}


def dev_auth_settings(jwks_url: str) -> AuthSettings:
    """Auth settings that accept the development issuer's tokens from `jwks_url`."""
    return AuthSettings(issuer=DEV_ISSUER, audience=DEV_AUDIENCE, jwks_url=jwks_url)


def mint_dev_token(
    subject: str,
    scopes: str,
    amr: Sequence[str] | None = DEV_AMR,
    organisation: str | None = None,
    client_id: str = DEV_CLIENT_ID,
    ttl_seconds: int = DEV_TOKEN_TTL_SECONDS,
    now: float | None = None,
    key: ECKey | None = None,
    issuer: str = DEV_ISSUER,
    audience: str = DEV_AUDIENCE,
    roles: list[str] | None = None,
    extra_claims: dict[str, Any] | None = None,
) -> str:
    """An RFC 9068 access token from the development issuer.

    `amr` defaults to `DEV_AMR`, a multi-factor sign-in; it is omitted when None or
    empty, so the token fails the gateway's MFA check, as a real single-factor sign-in
    would. `key` (default `dev_key()`)
    lets tests sign as an issuer the gateway does not know; with `issuer` and
    `audience` the same function mints for a test or benchmark issuer.
    """
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    signing_key = dev_key() if key is None else key
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "client_id": client_id,
        "scope": scopes,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_seconds,
        "jti": secrets.token_urlsafe(16),
    }
    if amr:
        claims["amr"] = list(amr)
    if organisation is not None:
        claims["org"] = organisation
    if roles:
        claims["roles"] = list(roles)
    claims.update(extra_claims or {})
    header = {"alg": "ES256", "typ": "at+jwt", "kid": signing_key.kid or signing_key.thumbprint()}
    return jwt.encode(header, claims, signing_key, algorithms=["ES256"])


def create_jwks_app() -> web.Application:
    """An aiohttp application serving `dev_jwks()` at `JWKS_PATH`."""
    app = web.Application()
    app.router.add_get(JWKS_PATH, _serve_jwks)
    return app


async def _serve_jwks(request: web.Request) -> web.Response:
    return web.json_response(
        dev_jwks(),
        content_type="application/jwk-set+json",
        headers={"Cache-Control": "max-age=300"},
    )
