"""Keyed pseudonyms for logs: stable within a deployment, meaningless outside it."""

from __future__ import annotations

import hashlib
import hmac

from gateway.crypto.keys import derive_key

__all__ = ["Pseudonymiser"]


class Pseudonymiser:
    """HMAC-SHA256 of a value, truncated: lets logs correlate a user without naming them."""

    def __init__(self, secret: str) -> None:
        self._key = derive_key(secret, "log-pseudonym")

    def __call__(self, value: str) -> str:
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()[:16]
