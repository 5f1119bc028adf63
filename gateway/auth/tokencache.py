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

    Only the digest is kept, never the token. An entry is never returned at or
    after its token's `exp` (no leeway: the cache may only be stricter than a
    fresh check), and at most `max_entries` are held; 0 disables caching.
    """

    def __init__(self, max_entries: int) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must not be negative")
        self._max_entries = max_entries
        self._entries: OrderedDict[bytes, Caller] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str, now: float) -> Caller | None:
        """The caller `token` proved, if cached and not yet expired at `now`."""
        if not self._entries:
            return None
        digest = _digest(token)
        caller = self._entries.get(digest)
        if caller is None:
            return None
        if now >= caller.expires_at:
            del self._entries[digest]
            return None
        self._entries.move_to_end(digest)
        return caller

    def put(self, token: str, caller: Caller, now: float) -> None:
        """Remember that `token` proved `caller`, evicting the least recently used."""
        if self._max_entries == 0 or now >= caller.expires_at:
            return
        digest = _digest(token)
        self._entries[digest] = caller
        self._entries.move_to_end(digest)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
