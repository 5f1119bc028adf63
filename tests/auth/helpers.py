"""Test-only helpers: hand-built JWTs signed with real keys, a fake clock, a live JWKS server."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from joserfc.jwk import ECKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

from gateway.settings import AuthSettings

ISSUER = "https://issuer.test.invalid/realm"
AUDIENCE = "contactpoint-gateway-test"
START = 1_750_000_000.0
JWKS_PATH = "/.well-known/jwks.json"


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


#: In `header=` or `claims=` overrides: leave this member out.
OMIT: Any = _Omit()


class FakeClock:
    """Seconds that move only when a test says so (wall and monotonic alike)."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class TestKeys:
    """Private keys made once per session; kids are what the JWKS publishes."""

    __test__ = False

    es256: ECKey
    es256_next: ECKey  # published only after a rotation
    es256_impostor: ECKey  # never published; signs with es256's kid
    rs256: RSAKey
    ed25519: OKPKey
    es512: ECKey  # P-521: published, but ES512 is not in the allow-list


def make_keys() -> TestKeys:
    return TestKeys(
        es256=ECKey.generate_key("P-256", {"kid": "es-1", "use": "sig"}),
        es256_next=ECKey.generate_key("P-256", {"kid": "es-2", "use": "sig"}),
        es256_impostor=ECKey.generate_key("P-256", {"kid": "es-1"}),
        rs256=RSAKey.generate_key(2048, {"kid": "rsa-1", "use": "sig"}),
        ed25519=OKPKey.generate_key("Ed25519", {"kid": "ed-1"}),
        es512=ECKey.generate_key("P-521", {"kid": "es512-1"}),
    )


def public(*keys: ECKey | RSAKey | OKPKey) -> list[dict[str, Any]]:
    return [dict(key.as_dict(private=False)) for key in keys]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return b64url(raw)


def sign(header: dict[str, Any], claims: Any, key: ECKey | RSAKey | OKPKey, alg: str) -> str:
    """A compact JWS built by hand, so any header or claim can be wrong on purpose."""
    signing_input = f"{segment(header)}.{segment(claims)}"
    signature = JWSRegistry.algorithms[alg].sign(signing_input.encode(), key)
    return f"{signing_input}.{b64url(signature)}"


_DEFAULT_ALG = {"EC": "ES256", "RSA": "RS256", "OKP": "EdDSA"}


def standard_claims(now: float) -> dict[str, Any]:
    issued = int(now)
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-7",
        "client_id": "case-system",
        "scope": "child.identity.read child.contact.read",
        "amr": ["pwd", "mfa"],
        "org": "council-42",
        "iat": issued,
        "nbf": issued,
        "exp": issued + 300,
        "jti": "token-1",
    }


def make_token(
    key: ECKey | RSAKey | OKPKey,
    now: float,
    *,
    alg: str | None = None,
    header: dict[str, Any] | None = None,
    claims: dict[str, Any] | None = None,
) -> str:
    """A token valid at `now` for the test settings, except for the given overrides."""
    alg = alg or _DEFAULT_ALG[key.key_type]
    full_header = {"alg": alg, "typ": "at+jwt", "kid": key.kid, **(header or {})}
    full_claims = {**standard_claims(now), **(claims or {})}
    return sign(_without_omitted(full_header), _without_omitted(full_claims), key, alg)


def _without_omitted(values: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not OMIT}


def auth_settings(jwks_url: str, **overrides: Any) -> AuthSettings:
    values: dict[str, Any] = {
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "jwks_url": jwks_url,
        "algorithms": ("ES256", "RS256", "PS256", "EdDSA"),
        "leeway_seconds": 10,
        "jwks_cache_seconds": 600,
        "jwks_refresh_min_seconds": 30,
        "jwks_timeout_seconds": 2.0,
        "max_token_bytes": 4096,
    }
    return AuthSettings(**{**values, **overrides})


class JwksServer:
    """A real JWKS endpoint on loopback that tests can rotate, break and count.

    `mode`: "ok" serves `document()`; "down" answers 503; "redirect" answers
    302; "hang" holds the request until the server stops; "body" serves `body`;
    "chunked" streams `body` without a Content-Length.
    """

    __test__ = False

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        self.mode = "ok"
        self.body = b""
        self.delay = 0.0
        self._release = asyncio.Event()
        self.requested = asyncio.Event()
        app = web.Application()
        app.router.add_get(JWKS_PATH, self._handle)
        self._server = TestServer(app, host="127.0.0.1")

    @property
    def url(self) -> str:
        return str(self._server.make_url(JWKS_PATH))

    def publish(self, *keys: ECKey | RSAKey | OKPKey) -> None:
        self.keys = public(*keys)

    def document(self) -> dict[str, Any]:
        return {"keys": self.keys}

    async def start(self) -> None:
        await self._server.start_server()

    async def close(self) -> None:
        self._release.set()
        await self._server.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.fetches += 1
        self.requested.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.mode == "down":
            return web.Response(status=503)
        if self.mode == "redirect":
            raise web.HTTPFound("https://elsewhere.invalid/jwks.json")
        if self.mode == "hang":
            await self._release.wait()
        if self.mode == "body":
            return web.Response(body=self.body, content_type="application/json")
        if self.mode == "chunked":
            response = web.StreamResponse()
            response.enable_chunked_encoding()
            await response.prepare(request)
            for start in range(0, len(self.body), 32 * 1024):
                await response.write(self.body[start : start + 32 * 1024])
            await response.write_eof()
            return response
        return web.json_response(self.document())
