"""Cache keys that name no child, and values that are ciphertext bound to their key.

Keys are `prefix + "s:" + HMAC-SHA256(k1, connector || NHS number)`; values are
`nonce || AES-256-GCM(k2, payload, aad=key)`. Binding the key as associated
data means a value copied under another key fails to open, and a dump of the
cache store holds neither NHS numbers nor any readable personal data.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.crypto.keys import derive_hmac, derive_key

__all__ = ["CacheSealer"]

_NONCE_BYTES = 12


class CacheSealer:
    """Derives cache keys and seals/opens cache values with keys derived from one secret."""

    def __init__(self, secret: str, prefix: str) -> None:
        self._mac = derive_hmac(secret, "cache-key")
        self._aead = AESGCM(derive_key(secret, "cache-value"))
        self._prefix = prefix

    def key(self, connector: str, nhs_number: str) -> str:
        """The store key for one source's answer about one child."""
        digest = self._mac.hexdigest(f"{connector}\x1f{nhs_number}".encode())
        return f"{self._prefix}s:{digest}"

    def seal(self, key: str, payload: bytes) -> bytes:
        """Encrypt `payload` for storage under `key`."""
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, payload, key.encode())

    def open(self, key: str, sealed: bytes) -> bytes | None:
        """The payload stored under `key`, or None if it was tampered with or moved."""
        if len(sealed) <= _NONCE_BYTES:
            return None
        try:
            return self._aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], key.encode())
        except InvalidTag:
            return None
