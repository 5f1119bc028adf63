"""Plumbing shared by the counters kept in Redis (budgets, rate limits).

Two concerns only: naming keys so that a dump of Redis names nobody, and staying
away from a Redis that just failed (one warning per back-off period, then an
in-process fallback until the period ends).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from gateway.crypto.keys import derive_hmac
from gateway.crypto.pseudonyms import REMEMBERED

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["REDIS_FAILURES", "Backoff", "KeyHasher"]

log = logging.getLogger(__name__)

REDIS_FAILURES = (RedisError, OSError, TimeoutError)
"""What a Redis call raises when Redis is unreachable, slow or refusing."""


class KeyHasher:
    """HMAC-SHA256 names for people and organisations in Redis keys and values.

    The key is derived from the configured secret for one `purpose`, and every
    value is tagged with its kind, so a subject and an organisation that happen to
    share a spelling never share a name.
    """

    def __init__(self, secret: str, purpose: str) -> None:
        self._mac = derive_hmac(secret, purpose)
        self._remembered: dict[tuple[str, str], str] = {}

    def __call__(self, kind: str, value: str) -> str:
        """The name; a subject's, client's or organisation's is kept for the next request
        (at most `REMEMBERED`), a child's never."""
        if kind == "child":
            return self._name(kind, value)
        name = self._remembered.get((kind, value))
        if name is None:
            if len(self._remembered) >= REMEMBERED:
                self._remembered.clear()
            name = self._remembered[kind, value] = self._name(kind, value)
        return name

    def _name(self, kind: str, value: str) -> str:
        message = f"{kind}\x00{value}".encode()
        # 128 bits: no collisions in practice, half the memory of a full digest.
        return self._mac.hexdigest(message)[:32]


class Backoff:
    """Tracks whether Redis may be tried now; `failed` logs once per back-off period."""

    def __init__(self, what: str, retry_seconds: float, clock: Callable[[], float]) -> None:
        self._what = what
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._down_until: float | None = None

    @property
    def down(self) -> bool:
        """True while inside a back-off period."""
        return self._down_until is not None and self._clock() < self._down_until

    def failed(self, exc: BaseException) -> None:
        self._down_until = self._clock() + self._retry_seconds
        log.warning("%s: Redis unavailable (%s), counting in this process for %.0f s",
                    self._what, type(exc).__name__, self._retry_seconds)

    def succeeded(self) -> None:
        if self._down_until is not None:
            log.info("%s: Redis is back, counting there again", self._what)
        self._down_until = None
