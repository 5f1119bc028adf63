"""The HTTP plumbing the built-in connectors share: one pooled session, one error boundary.

`HttpClient` owns one pool of keep-alive connections per upstream system
(`connectors.wire.Wire`, created lazily), bounded by a total timeout and a
connection limit, and translates every foreign failure into the
`connectors.errors` tree with `raise ... from exc`. Messages name the failure
kind only: request URLs carry NHS numbers and names in their query strings.

`HttpConnector` is the base of the manifest-driven connectors: name, traits
and cache TTL from the manifest, client, `close`, and the conversion of
`ShapeError` into `ConnectorProtocolError`.
"""

from __future__ import annotations

import abc
import asyncio
import codecs
import contextlib
import json
import re
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

import orjson
from yarl import URL

from connectors.errors import (
    ConnectorConnectionError,
    ConnectorProtocolError,
    ConnectorResponseError,
    ConnectorTimeoutError,
)
from connectors.resilience.timeout import ends_within
from connectors.shape import ShapeError
from connectors.upstream_auth import build_upstream_auth
from connectors.wire import Answer, AnswerTooLargeError, Wire, WireProtocolError

if TYPE_CHECKING:
    from collections.abc import Coroutine, Iterator, Mapping

    from connectors.manifest import Manifest
    from connectors.upstream_auth import RequestAuth, UpstreamAuth
    from gateway.core.facts import DemographicSearch, SourceFacts

__all__ = ["MAX_BODY_BYTES", "USER_AGENT", "HttpClient", "HttpConnector"]

MAX_BODY_BYTES = 4 * 1024 * 1024
USER_AGENT = "contactpoint-gateway/0.1"

_MAX_CACHED_TARGETS = 64
"""Encoded request targets kept per client: the first paths asked for (lookup, search,
health; a GP's practice reads past that many are encoded each time)."""

_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")
"""RFC 3986's unreserved characters: what `quote` never changes."""


def _quoted(text: str) -> str:
    return text if _UNRESERVED.fullmatch(text) else quote(text, safe="")


def query_string(params: Mapping[str, str]) -> str:
    """`urlencode(params, quote_via=quote)`, without `quote`'s work for the names and
    values (an NHS number, a date) that need no escaping: four a cache miss."""
    return "&".join([f"{_quoted(name)}={_quoted(value)}" for name, value in params.items()])


class HttpClient:
    """GETs JSON from one upstream system; every failure is a `ConnectorError`.

    Requests go over one `connectors.wire.Wire` (pooled keep-alive HTTP/1.1 connections,
    created lazily). Cancellation-safe: a cancelled request closes its connection.
    With `auth` (`connectors.upstream_auth`), every request carries its headers, a
    401 gets one retry with fresh ones, and the connections use its TLS context.
    """

    def __init__(self, connector: str, base_url: str, *, timeout_seconds: float,
                 max_connections: int, accept: str = "application/json",
                 max_body_bytes: int = MAX_BODY_BYTES, auth: UpstreamAuth | None = None) -> None:
        self._connector = connector
        self._base = base_url.rstrip("/")
        self._targets: dict[str, str] = {}
        self._timeout_seconds = timeout_seconds
        self._max_connections = max_connections
        self._headers = {"Accept": accept, "User-Agent": USER_AGENT}
        self._max_body = max_body_bytes
        self._auth: RequestAuth | None = None if auth is None else auth.request_auth
        self._ssl = None if auth is None else auth.ssl_context
        self._wire: Wire | None = None
        self._closed = False

    def get_json(self, path: str, params: Mapping[str, str] | None = None
                 ) -> Coroutine[Any, Any, object]:
        """The decoded JSON body of a 2xx answer to ``GET {base_url}{path}?{params}``.

        Like the steps below it, a plain method handing on the next step's coroutine where
        it has nothing to do after it: one coroutine fewer per step on every upstream call.
        """
        return self._request(path, params, None)

    async def post_json(self, path: str, body: Mapping[str, object],
                        headers: Mapping[str, str] | None = None) -> object:
        """The decoded JSON body of a 2xx answer to ``POST {base_url}{path}`` of `body`.

        `headers` are added (e.g. an ``Idempotency-Key``); failures raise as for `get_json`.
        """
        data = json.dumps(body).encode()
        return await self._request(path, None, (data, dict(headers or {})))

    async def _request(self, path: str, params: Mapping[str, str] | None,
                       post: tuple[bytes, dict[str, str]] | None) -> object:
        try:
            auth = self._auth
            answer = await (self._timed(path, params, None, post) if auth is None
                            else self._answer(auth, path, params, post))
        except TimeoutError as exc:
            raise ConnectorTimeoutError(self._connector, "no answer within the timeout") from exc
        except AnswerTooLargeError as exc:
            raise ConnectorProtocolError(self._connector, "answer too large") from exc
        except WireProtocolError as exc:
            raise ConnectorProtocolError(self._connector, f"unusable HTTP answer ({exc})") from exc
        except OSError as exc:  # ConnectionError, TLS, name resolution
            raise ConnectorConnectionError(
                self._connector, f"connection failed ({type(exc).__name__})") from exc
        status, content_type, body = answer
        if not 200 <= status < 300:
            raise ConnectorResponseError(self._connector, status)
        return self._decode(content_type, body)

    async def _answer(self, auth: RequestAuth, path: str, params: Mapping[str, str] | None,
                      post: tuple[bytes, dict[str, str]] | None) -> Answer:
        """`_timed` with `auth`'s headers, renewed once if refused."""
        # Credentials first, outside this client's timer: a token endpoint has its own
        # timeout and says so when it expires (two equal timers would race for the error).
        sent = await auth.headers()
        answer = await self._timed(path, params, sent, post)
        # Refused: the credentials may have been revoked or expired early; one retry
        # with fresh ones (a renewed token), never a loop.
        if answer.status == HTTPStatus.UNAUTHORIZED and auth.refused(sent):
            answer = await self._timed(path, params, await auth.headers(), post)
        return answer

    def _timed(self, path: str, params: Mapping[str, str] | None,
               headers: Mapping[str, str] | None,
               post: tuple[bytes, dict[str, str]] | None) -> Coroutine[Any, Any, Answer]:
        """`_send` within this client's timeout, unless the call's deadline ends sooner."""
        if ends_within(self._timeout_seconds):
            # The call's deadline (`connectors.resilience.timeout`) ends before this
            # client's own timeout would: one deadline per call, not two timers racing.
            return self._send(path, params, headers, post)
        return self._send_within_timeout(path, params, headers, post)

    async def _send_within_timeout(self, path: str, params: Mapping[str, str] | None,
                                   headers: Mapping[str, str] | None,
                                   post: tuple[bytes, dict[str, str]] | None) -> Answer:
        async with asyncio.timeout(self._timeout_seconds):
            return await self._send(path, params, headers, post)

    async def close(self) -> None:
        """Close the pooled connections; later requests raise `ConnectorConnectionError`."""
        self._closed = True
        if self._auth is not None:
            await self._auth.close()
        if self._wire is not None:
            wire, self._wire = self._wire, None
            await wire.close()

    def _client(self) -> Wire:
        if self._closed:
            raise ConnectorConnectionError(self._connector, "connector is closed")
        if self._wire is None:
            try:
                self._wire = Wire(self._base, max_connections=self._max_connections,
                                  max_body_bytes=self._max_body, headers=self._headers,
                                  ssl_context=self._ssl)
            except ValueError as exc:
                raise ConnectorConnectionError(self._connector, "unusable base URL") from exc
        return self._wire

    def _send(self, path: str, params: Mapping[str, str] | None,
              headers: Mapping[str, str] | None,
              post: tuple[bytes, dict[str, str]] | None = None) -> Coroutine[Any, Any, Answer]:
        """The request's coroutine (a closed client or a bad target raise here, at once)."""
        wire = self._client()
        target = self._targets.get(path)
        if target is None:
            target = self._target(path)
        if params:
            target += ("&" if "?" in target else "?") + query_string(params)
        if post is None:
            return wire.request("GET", target, headers)
        data, extra = post
        return wire.request("POST", target,
                            {**(headers or {}), **extra, "Content-Type": "application/json"}, data)

    def _target(self, path: str) -> str:
        """The encoded path (and query) of `path` on this system, as yarl encodes a URL;
        kept for the first paths asked for (lookups, health)."""
        target = URL(self._base + path).raw_path_qs
        if len(self._targets) < _MAX_CACHED_TARGETS:
            self._targets[path] = target
        return target

    def _decode(self, content_type: str, body: bytes) -> object:
        if content_type != "application/json" and not content_type.endswith("+json"):
            raise ConnectorProtocolError(self._connector, "answer is not JSON")
        if body.startswith(codecs.BOM_UTF8):  # `json.loads` took one (RFC 8259 allows it)
            body = body[len(codecs.BOM_UTF8):]
        try:
            return orjson.loads(body)
        except (ValueError, RecursionError) as exc:  # orjson.JSONDecodeError is a ValueError
            raise ConnectorProtocolError(self._connector, "answer is not valid JSON") from exc


class HttpConnector(abc.ABC):
    """Base of the HTTP connectors: identity and traits from the manifest, the pooled client.

    Subclasses implement `fetch`, `search` and `check` (see `connectors.base.Connector`).
    """

    ACCEPT: ClassVar[str] = "application/json"

    def __init__(self, manifest: Manifest) -> None:
        if manifest.base_url is None:
            raise ValueError(f"connector {manifest.name}: no base_url")
        self.manifest = manifest
        self._name = manifest.name
        self._cache_ttl = manifest.cache_ttl_seconds or 0.0
        auth = build_upstream_auth(manifest.name, manifest.auth,
                                   timeout_seconds=manifest.timeout_seconds)
        self._http = HttpClient(manifest.name, manifest.base_url,
                                timeout_seconds=manifest.timeout_seconds,
                                max_connections=manifest.max_connections, accept=self.ACCEPT,
                                auth=auth)

    def search_parameters(self, criteria: DemographicSearch, names: tuple[str, str, str | None,
                          str | None], date_format: str = "%Y-%m-%d") -> dict[str, str]:
        """An exact demographic search in this system's parameter `names` (family name, date
        of birth, given name, postcode); an attribute the system cannot search is dropped,
        which only widens the answer (the gateway matches exactly afterwards)."""
        family, birth, given, postcode = names
        params = {family: criteria.family_name, birth: criteria.date_of_birth.strftime(date_format)}
        if criteria.given_name is not None and given is not None:
            params[given] = criteria.given_name
        if criteria.postcode is not None and postcode is not None:
            params[postcode] = criteria.postcode
        return params

    @property
    def name(self) -> str:
        return self._name

    @property
    def cache_ttl(self) -> float:
        return self._cache_ttl

    @property
    def kind(self) -> str:
        return self.manifest.kind

    @property
    def can_shield(self) -> bool:
        """True if this system records shielding, so its silence means "unknown"."""
        return self.manifest.records_shielding

    @property
    def provides(self) -> frozenset[str]:
        """The `SourceFacts` attributes this system can state (its failure withholds them)."""
        return self.manifest.facts

    @abc.abstractmethod
    async def fetch(self, nhs_number: str) -> SourceFacts | None: ...

    @abc.abstractmethod
    async def search(self, criteria: DemographicSearch) -> list[SourceFacts]: ...

    @abc.abstractmethod
    async def check(self) -> None: ...

    async def close(self) -> None:
        await self._http.close()

    async def post_json(self, path: str, body: Mapping[str, object],
                        headers: Mapping[str, str] | None = None) -> object:
        """POST `body` as JSON to `path` of this system (see `HttpClient.post_json`)."""
        return await self._http.post_json(path, body, headers)

    async def get_json(self, path: str) -> object:
        """GET `path` of this system as JSON (see `HttpClient.get_json`)."""
        return await self._http.get_json(path)

    @contextlib.contextmanager
    def parsing(self) -> Iterator[None]:
        """Turn a `ShapeError` raised in the block into `ConnectorProtocolError`."""
        try:
            yield
        except ShapeError as exc:
            raise self.malformed(exc) from exc

    def malformed(self, exc: ShapeError) -> ConnectorProtocolError:
        """The error of an answer `exc` found malformed (`parsing`'s, for a hot path's own
        ``try``: a generator-based context manager costs a microsecond a call)."""
        return ConnectorProtocolError(self._name, f"malformed answer: {exc}")

    def only_record(self, records: list[SourceFacts], nhs_number: str) -> SourceFacts | None:
        """The one record answering a lookup by `nhs_number`, or `None` for none.

        Several records, or one for another child, mean the system cannot be
        trusted for this child: `ConnectorProtocolError`.
        """
        if not records:
            return None
        if len(records) > 1:
            raise ConnectorProtocolError(self._name, "several records for one NHS number")
        if records[0].nhs_number != nhs_number:
            raise ConnectorProtocolError(self._name, "record is for another NHS number")
        return records[0]
