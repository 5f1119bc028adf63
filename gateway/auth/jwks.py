"""The issuer's signing keys: fetched over HTTP, cached, and refreshed at a bounded rate."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Self

import aiohttp
from joserfc.jwk import Key, KeySet

from gateway.auth.errors import JwksUnavailableError
from gateway.auth.keys import JwksDocumentError, usable_keys

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from gateway.settings import AuthSettings

__all__ = ["MAX_JWKS_BYTES", "JwksCache", "JwksStatus"]

logger = logging.getLogger(__name__)

#: A JWK Set larger than this is refused: real ones are a few kilobytes.
MAX_JWKS_BYTES: Final = 256 * 1024


class _FetchError(Exception):
    """One fetch failed; the message is a short reason fit for a log line."""


@dataclass(frozen=True, slots=True)
class JwksStatus:
    """What a readiness probe needs to know about the key set.

    `ready` is true while a key set may be used: one was fetched, and it is not
    older than `jwks_cache_seconds` + `jwks_max_stale_seconds`. `stale` is true
    when the one held is older than `jwks_cache_seconds` because refreshes are
    failing; `expired` when it is past the bound and no longer used at all.
    """

    ready: bool
    key_count: int
    age_seconds: float | None
    stale: bool
    last_error: str | None
    expired: bool = False


class JwksCache:
    """The issuer's JWK Set, fetched from `settings.jwks_url` and cached.

    * The set is re-fetched once it is older than `jwks_cache_seconds`.
    * An unknown `kid` triggers a refresh, but fetches (successful or not)
      start at most once per `jwks_refresh_min_seconds`, and concurrent
      callers share the one in flight: a stream of random `kid`s cannot make
      this object fetch more often than that.
    * Only public signature keys that fit `settings.algorithms` are kept
      (see `gateway.auth.keys.usable_keys`).
    * When a fetch fails the last good set is kept (stale-if-error), but only
      for `jwks_max_stale_seconds` past its cache period: then
      `JwksUnavailableError` is raised (fail closed), as while no set was ever
      fetched. Keys withdrawn by an issuer that cannot be reached are not
      trusted for ever.

    The object owns one `aiohttp.ClientSession`, created on first use inside
    the running loop; call `close()` (or use `async with`) when done.
    `clock` is monotonic seconds; tests inject their own.
    """

    def __init__(
        self, settings: AuthSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._url = settings.jwks_url
        self._algorithms = frozenset(settings.algorithms)
        self._ttl = settings.jwks_cache_seconds
        self._max_age = settings.jwks_cache_seconds + settings.jwks_max_stale_seconds
        self._min_interval = settings.jwks_refresh_min_seconds
        self._timeout = aiohttp.ClientTimeout(total=settings.jwks_timeout_seconds)
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._keys: dict[str, Key] | None = None
        self._key_set: KeySet | None = None
        self._fetched_at: float | None = None
        self._last_attempt: float | None = None
        self._last_error: str | None = None
        self._inflight: asyncio.Task[None] | None = None
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def key_set(self) -> KeySet | None:
        """The usable keys of the last good fetch, or None before the first one."""
        return self._key_set

    @property
    def closed(self) -> bool:
        """True once `close()` has been called."""
        return self._closed

    @property
    def status(self) -> JwksStatus:
        """The state of the cache now, without fetching."""
        age = None if self._fetched_at is None else self._clock() - self._fetched_at
        expired = age is not None and age >= self._max_age
        return JwksStatus(
            ready=self._keys is not None and not expired,
            key_count=len(self._keys or ()),
            age_seconds=age,
            stale=age is not None and age >= self._ttl,
            last_error=self._last_error,
            expired=expired,
        )

    async def check(self) -> JwksStatus:
        """Readiness probe: refresh if due (within the rate limit), then report."""
        if self._refresh_due():
            await self._refresh()
        return self.status

    async def key_for(self, kid: str) -> Key | None:
        """The key published under `kid`, or None when the issuer does not publish it.

        Raises `JwksUnavailableError` when no key set could ever be fetched.
        """
        if self._closed:
            raise RuntimeError("JwksCache is closed")
        if self._refresh_due():
            await self._refresh()
        if self._keys is None or self._expired():
            raise JwksUnavailableError
        key = self._keys.get(kid)
        if key is None:
            await self._refresh()
            key = self._keys.get(kid)
        return key

    async def close(self) -> None:
        """Stop any fetch in flight and close the HTTP session."""
        self._closed = True
        task = self._inflight
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _expired(self) -> bool:
        return self._fetched_at is not None and self._clock() - self._fetched_at >= self._max_age

    def _refresh_due(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= self._ttl

    async def _refresh(self) -> None:
        """Join the fetch in flight, or start one unless one started too recently."""
        if self._closed:
            raise RuntimeError("JwksCache is closed")
        task = self._inflight
        if task is None:
            now = self._clock()
            if self._last_attempt is not None and now - self._last_attempt < self._min_interval:
                return
            self._last_attempt = now
            task = asyncio.create_task(self._fetch(), name="jwks-fetch")
            self._inflight = task
        # A caller that gives up (client disconnect) must not cancel the shared fetch.
        await asyncio.shield(task)

    async def _fetch(self) -> None:
        try:
            keys = usable_keys(await self._download(), self._algorithms)
        except (_FetchError, JwksDocumentError) as exc:
            self._last_error = str(exc)
            if self._keys is None:
                logger.warning("JWKS fetch failed (%s); no key set yet", exc)
            else:
                logger.warning("JWKS fetch failed (%s); serving the previous key set", exc)
            return
        finally:
            self._inflight = None
        self._keys = keys
        self._key_set = KeySet(list(keys.values()))
        self._fetched_at = self._clock()
        self._last_error = None
        logger.info("JWKS fetched: %d usable key(s)", len(keys))

    async def _download(self) -> object:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        headers = {"Accept": "application/jwk-set+json, application/json"}
        try:
            async with self._session.get(self._url, headers=headers, allow_redirects=False) as resp:
                if resp.status != 200:
                    raise _FetchError(f"HTTP status {resp.status}")
                body = await _read_limited(resp)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _FetchError(type(exc).__name__) from exc
        try:
            return json.loads(body)
        except ValueError as exc:
            raise _FetchError("the response is not JSON") from exc


async def _read_limited(resp: aiohttp.ClientResponse) -> bytes:
    if resp.content_length is not None and resp.content_length > MAX_JWKS_BYTES:
        raise _FetchError("the response is too large")
    body = bytearray()
    async for chunk in resp.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > MAX_JWKS_BYTES:
            raise _FetchError("the response is too large")
    return bytes(body)
