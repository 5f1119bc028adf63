"""Derivation of purpose-bound keys from configured secrets (HKDF-SHA256).

One configured secret never serves two purposes directly: each use (cache key
hashing, cache encryption, id encryption, log pseudonyms) gets its own key.
"""

from __future__ import annotations

import functools

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["derive_key"]


@functools.lru_cache(maxsize=64)  # a few secrets x purposes; HKDF per request would show
def derive_key(secret: str, purpose: str, length: int = 32) -> bytes:
    """A `length`-byte key for `purpose`, derived from `secret` with HKDF-SHA256."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=None,
                info=f"contactpoint-gateway/{purpose}/v1".encode())
    return hkdf.derive(secret.encode())
