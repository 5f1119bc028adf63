"""A bounded cache of validated tokens, so a repeated token skips signature verification."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.core.caller import Caller

__all__ = ["TokenCache"]


class TokenCache:
    """Least-recently-used map from SHA-256(token) to the `Caller` it proved.

    With the caller is kept the token's key binding (`cnf.jkt`, or None), so
    that a cached token is held to its binding just as a fresh one.

    Only the digest is kept, never the token. An entry is never returned at or
    after its token's `exp` (no leeway: the cache may only be stricter than a
    fresh check), and at most `max_entries` are held; 0 disables caching.
    """

    def __init__(self, max_entries: int) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must not be negative")
        self._max_entries = max_entries
        self._entries: OrderedDict[bytes, tuple[Caller, str | None]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str, now: float) -> Caller | None:
        """The caller `token` proved, if cached and not yet expired at `now`."""
        entry = self.lookup(token, now)
        return None if entry is None else entry[0]

    def lookup(self, token: str, now: float) -> tuple[Caller, str | None] | None:
        """The caller `token` proved and its `cnf.jkt`, if cached and not expired at `now`."""
        if not self._entries:
            return None
        digest = _digest(token)
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if now >= entry[0].expires_at:
            del self._entries[digest]
            return None
        self._entries.move_to_end(digest)
        return entry

    def put(self, token: str, caller: Caller, now: float, jkt: str | None = None) -> None:
        """Remember that `token` proved `caller` (bound to `jkt`), evicting the LRU entry."""
        if self._max_entries == 0 or now >= caller.expires_at:
            return
        digest = _digest(token)
        self._entries[digest] = (caller, jkt)
        self._entries.move_to_end(digest)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
