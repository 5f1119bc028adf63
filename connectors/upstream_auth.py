"""Upstream authentication: a manifest's `[auth]` made into request headers and a TLS context.

Built once per connector, when the connector is built (`build_upstream_auth`): the
secret files are read then, never per request, and a missing or unreadable one is a
one-line `ManifestError` naming the key and the file. Secrets and tokens are never put
in a message, a log line or a repr.

- `StaticHeader`: one header (an API key) on every request.
- `ClientCredentialsTokens`: OAuth 2.0 client credentials (RFC 6749 4.4) through
  authlib's protocol client, subclassed over our own aiohttp session. One fetch at a
  time; the token is reused until `renew_before_seconds` before it expires; a 401 from
  the system drops it, so the one retry that follows fetches exactly one new token.
- `client_tls_context`: the SSL context of mutual TLS (our client certificate, and the
  CA of the system's certificate if it has its own).

`HttpClient` asks its `RequestAuth` for headers before each request and tells it of a
401 (`refused`); anything else about credentials stays in this module.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import aiohttp
from authlib.oauth2.client import OAuth2Client
from pydantic import SecretStr

from connectors.errors import ConnectorConnectionError, ConnectorError, ConnectorTimeoutError
from connectors.manifest import (
    ClientCertificate,
    HeaderAuth,
    ManifestError,
    MtlsAuth,
    OAuth2ClientCredentials,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from authlib.oauth2.auth import ClientAuth

    from connectors.manifest import AuthSpec

__all__ = [
    "ClientCredentialsTokens",
    "ConnectorAuthError",
    "RequestAuth",
    "StaticHeader",
    "UpstreamAuth",
    "build_upstream_auth",
    "client_tls_context",
    "read_secret",
]

MAX_SECRET_BYTES = 16 * 1024
MAX_TOKEN_ANSWER_BYTES = 64 * 1024
_OAUTH_ERROR = re.compile(r"^[a-z_]{1,40}$")
_USER_AGENT = "contactpoint-gateway/0.1"


class ConnectorAuthError(ConnectorError):
    """No credentials for the system: its token endpoint refused us or answered unusably."""


class RequestAuth(Protocol):
    """What `HttpClient` asks of an authentication scheme: one request at a time."""

    async def headers(self) -> dict[str, str]:
        """The headers to add to the next request (may fetch a token: `ConnectorError`)."""

    def refused(self, sent: Mapping[str, str]) -> bool:
        """The system answered 401 to a request sent with `sent`: True if one retry may help."""

    async def close(self) -> None:
        """Release what the scheme holds (a token endpoint's session)."""


@dataclass(frozen=True, slots=True)
class UpstreamAuth:
    """What a connector's HTTP client needs: request headers, and its TLS context."""

    request_auth: RequestAuth | None = None
    ssl_context: ssl.SSLContext | None = None


def build_upstream_auth(connector: str, spec: AuthSpec, *,
                        timeout_seconds: float) -> UpstreamAuth:
    """The credentials `spec` describes, its files read now; raises `ManifestError`."""
    if isinstance(spec, MtlsAuth):
        return UpstreamAuth(ssl_context=client_tls_context(connector, spec, "auth"))
    if isinstance(spec, HeaderAuth):
        value = read_secret(connector, "auth.value_file", spec.value_file)
        return UpstreamAuth(StaticHeader(spec.name, value),
                            _tls(connector, spec.client_certificate))
    if isinstance(spec, OAuth2ClientCredentials):
        secret = read_secret(connector, "auth.client_secret_file", spec.client_secret_file)
        tokens = ClientCredentialsTokens(connector, spec, secret, timeout_seconds=timeout_seconds)
        return UpstreamAuth(tokens, _tls(connector, spec.client_certificate))
    return UpstreamAuth()


def _tls(connector: str, certificate: ClientCertificate | None) -> ssl.SSLContext | None:
    if certificate is None:
        return None
    return client_tls_context(connector, certificate, "auth.client_certificate")


def _unreadable(connector: str, key: str, path: Path, why: str) -> ManifestError:
    return ManifestError(f"connector {connector}: {key}: {path}: {why}")


def read_secret(connector: str, key: str, path: Path) -> SecretStr:
    """The one line of text in the file at `path`, surrounding whitespace removed.

    Raises `ManifestError` naming `key` and the file, never its content.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise _unreadable(connector, key, path, "no such file") from None
    except OSError as exc:
        raise _unreadable(connector, key, path, f"cannot be read ({exc.strerror})") from None
    if len(raw) > MAX_SECRET_BYTES:
        raise _unreadable(connector, key, path, "too large for a secret")
    try:
        value = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise _unreadable(connector, key, path, "not UTF-8 text") from None
    if not value:
        raise _unreadable(connector, key, path, "the file is empty")
    if not value.isprintable():
        # A line break would let the file's content add headers of its own.
        raise _unreadable(connector, key, path, "must hold one line of printable text")
    return SecretStr(value)


def _readable(connector: str, key: str, path: Path) -> str:
    if not path.is_file():
        why = "no such file" if not path.exists() else "not a file"
        raise _unreadable(connector, key, path, why)
    return str(path)


def client_tls_context(connector: str, spec: ClientCertificate, where: str) -> ssl.SSLContext:
    """An SSL context presenting our client certificate and checking the system's.

    `spec.ca_file`, if given, is the only CA the system's certificate may chain to;
    otherwise the default trust store. Hostnames are checked. Raises `ManifestError`
    naming the key (under `where`) and the file.
    """
    cert = _readable(connector, f"{where}.cert_file", spec.cert_file)
    key = _readable(connector, f"{where}.key_file", spec.key_file)
    ca = None if spec.ca_file is None else _readable(connector, f"{where}.ca_file", spec.ca_file)
    try:
        context = ssl.create_default_context(cafile=ca)
    except (ssl.SSLError, ValueError):
        raise _unreadable(connector, f"{where}.ca_file", spec.ca_file or spec.cert_file,
                          "not a PEM CA certificate") from None
    try:
        # An empty passphrase instead of OpenSSL's prompt on the terminal.
        context.load_cert_chain(cert, key, password=b"")
    except ssl.SSLError:
        raise ManifestError(f"connector {connector}: {where}.cert_file, {where}.key_file: "
                            f"{cert}, {key}: not a PEM certificate and its unencrypted "
                            "private key") from None
    return context


class StaticHeader:
    """The same header, a secret read from a file, on every request; a 401 is final."""

    def __init__(self, name: str, value: SecretStr) -> None:
        self._name = name
        self._value = value

    async def headers(self) -> dict[str, str]:
        return {self._name: self._value.get_secret_value()}

    def refused(self, sent: Mapping[str, str]) -> bool:
        return False

    async def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"StaticHeader({self._name!r}, '**********')"


@dataclass(frozen=True, slots=True)
class _Token:
    value: SecretStr
    renew_at: float
    """On the monotonic clock: from then on a new token is fetched before the next request."""


class _TokenRefusedError(Exception):
    """The token endpoint's OAuth error (its `error` code only: the description is theirs)."""

    def __init__(self, error: object = None, description: object = None) -> None:
        super().__init__("token endpoint error")
        self.error = error if isinstance(error, str) and _OAUTH_ERROR.match(error) else None


class _TokenTooLargeError(Exception):
    pass


class _TokenHttpError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


@dataclass(frozen=True, slots=True)
class _TokenAnswer:
    """The token endpoint's answer, as authlib's `parse_response_token` reads one."""

    status_code: int
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise _TokenHttpError(self.status_code)


class _AiohttpOAuth2Client(OAuth2Client):  # type: ignore[misc]  # authlib ships no type hints
    """authlib's OAuth 2.0 client (the token request, client authentication, the answer's
    parsing) with the one HTTP exchange it delegates done by aiohttp.

    authlib's own async client is built on httpx and warns that it is deprecated in
    favour of httpx2; the base `OAuth2Client` is transport-free and warns about nothing.
    """

    oauth_error_class = _TokenRefusedError

    def __init__(self, session: Callable[[], aiohttp.ClientSession], **kwargs: object) -> None:
        super().__init__(None, **kwargs)
        self._session = session

    async def _fetch_token(self, url: str, body: str = "",
                           headers: Mapping[str, str] | None = None, auth: ClientAuth = None,
                           method: str = "POST", **kwargs: object) -> dict[str, object]:
        # authlib's `fetch_token` returns this coroutine, so it is awaited by our caller.
        url, prepared, body = auth.prepare(method, url, dict(headers or {}), body)
        async with self._session().post(url, data=body.encode(), headers=prepared,
                                        allow_redirects=False) as response:
            answer = bytearray()
            async for chunk in response.content.iter_chunked(16 * 1024):
                answer += chunk
                if len(answer) > MAX_TOKEN_ANSWER_BYTES:
                    raise _TokenTooLargeError
        token: dict[str, object] = self.parse_response_token(
            _TokenAnswer(response.status, bytes(answer)))
        return token


class ClientCredentialsTokens:
    """Bearer tokens for one system by the client credentials grant, fetched one at a time.

    A token is reused until `renew_before_seconds` before its `expires_in` (at most half
    its lifetime early); without `expires_in`, until the system refuses it. Concurrent
    requests that find no usable token wait for the one fetch under way. Failures are
    `ConnectorError`s that name the failure kind, never the secret or a token.
    """

    def __init__(self, connector: str, spec: OAuth2ClientCredentials, secret: SecretStr, *,
                 timeout_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._connector = connector
        self._spec = spec
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._clock = clock
        self._lock = asyncio.Lock()
        self._token: _Token | None = None
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._client = _AiohttpOAuth2Client(
            self._client_session, client_id=spec.client_id,
            client_secret=secret.get_secret_value(), scope=spec.scope,
            token_endpoint_auth_method=spec.client_auth)
        self.fetches = 0
        """Tokens fetched so far (renewals included)."""

    async def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {(await self.token()).get_secret_value()}"}

    def refused(self, sent: Mapping[str, str]) -> bool:
        token = self._token
        if token is not None and sent.get("Authorization") == (
                f"Bearer {token.value.get_secret_value()}"):
            self._token = None  # the next request fetches one; requests with a newer keep it
        return True

    async def token(self) -> SecretStr:
        """A usable access token: the cached one, or one fetched now (once for all waiters)."""
        token = self._token
        if token is not None and self._clock() < token.renew_at:
            return token.value
        async with self._lock:
            token = self._token
            if token is None or self._clock() >= token.renew_at:
                token = self._token = await self._fetch()
            return token.value

    async def close(self) -> None:
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _client_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ConnectorConnectionError(self._connector, "connector is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=4), timeout=self._timeout,
                headers={"User-Agent": _USER_AGENT}, cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def _fetch(self) -> _Token:
        extra = {} if self._spec.audience is None else {"audience": self._spec.audience}
        started = self._clock()
        try:
            answer = await self._client.fetch_token(
                self._spec.token_url, grant_type="client_credentials", **extra)
        except TimeoutError as exc:
            raise ConnectorTimeoutError(
                self._connector, "token endpoint: no answer within the timeout") from exc
        except aiohttp.ClientError as exc:
            raise ConnectorConnectionError(
                self._connector, f"token endpoint: connection failed ({type(exc).__name__})"
            ) from exc
        except _TokenRefusedError as exc:
            raise ConnectorAuthError(self._connector, "token endpoint refused the client"
                                     + (f" ({exc.error})" if exc.error else "")) from None
        except _TokenHttpError as exc:
            raise ConnectorAuthError(self._connector,
                                     f"token endpoint: HTTP {exc.status}") from None
        except _TokenTooLargeError:
            raise ConnectorAuthError(self._connector, "token endpoint: answer too large") from None
        except (ValueError, TypeError, OverflowError, RecursionError):
            # Not JSON, not an object, or an `expires_in` authlib cannot make an integer.
            raise ConnectorAuthError(self._connector,
                                     "token endpoint: answer is not a usable token") from None
        self.fetches += 1
        return self._read(answer, started)

    def _read(self, answer: Mapping[str, object], started: float) -> _Token:
        value = answer.get("access_token")
        kind = answer.get("token_type")
        if not isinstance(value, str) or not value or not value.isprintable():
            raise ConnectorAuthError(self._connector, "token endpoint: no usable access_token")
        if not isinstance(kind, str) or kind.lower() != "bearer":
            raise ConnectorAuthError(self._connector, "token endpoint: token_type is not Bearer")
        lifetime = answer.get("expires_in")
        if isinstance(lifetime, str) and lifetime.isascii() and lifetime.isdigit():
            lifetime = int(lifetime)  # some servers send it as a string
        if (isinstance(lifetime, bool) or not isinstance(lifetime, int | float)
                or not math.isfinite(lifetime)):
            return _Token(SecretStr(value), math.inf)
        early = min(self._spec.renew_before_seconds, max(lifetime, 0) / 2)
        # From when we asked: the token's clock started before its answer reached us.
        return _Token(SecretStr(value), started + lifetime - early)
