"""Keyed pseudonyms for logs: stable within a deployment, meaningless outside it."""

from __future__ import annotations

from gateway.crypto.keys import derive_hmac

__all__ = ["REMEMBERED", "Pseudonymiser"]

REMEMBERED = 4096
"""Callers whose pseudonyms a process keeps (an HMAC costs more than a look-up)."""


class Pseudonymiser:
    """HMAC-SHA256 of a value, truncated: lets logs correlate a user without naming them."""

    def __init__(self, secret: str) -> None:
        self._key = derive_hmac(secret, "log-pseudonym")
        self._remembered: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        return self._key.hexdigest(value.encode())[:16]

    def remembered(self, subject: str) -> str:
        """The pseudonym of a caller (never a child's identifier), kept for the next request.

        At most `REMEMBERED` callers; then the memory starts again.
        """
        pseudonym = self._remembered.get(subject)
        if pseudonym is None:
            if len(self._remembered) >= REMEMBERED:
                self._remembered.clear()
            pseudonym = self._remembered[subject] = self(subject)
        return pseudonym
