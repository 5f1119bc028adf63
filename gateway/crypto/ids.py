"""Opaque child ids bound to one OAuth client and one time epoch.

An id is AES-SIV (deterministic authenticated encryption) of the NHS number,
with the client id and the epoch as associated data. So an id reveals nothing,
differs between clients, cannot be forged, and stops working after its epoch
and one more (the overlap lets ids minted just before a boundary keep working).
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from gateway.crypto.keys import derive_key

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ChildIdCodec"]

_PREFIX = "c1."
_MAX_ID_LENGTH = 64


class ChildIdCodec:
    """Encode NHS numbers as client-bound, expiring ids, and decode them back."""

    def __init__(self, secret: str, lifetime_seconds: int,
                 clock: Callable[[], float] = time.time) -> None:
        self._siv = AESSIV(derive_key(secret, "child-id", 64))
        self._lifetime = lifetime_seconds
        self._clock = clock

    def _epoch(self) -> int:
        return int(self._clock()) // self._lifetime

    def _aad(self, client_id: str, epoch: int) -> list[bytes]:
        return [client_id.encode(), epoch.to_bytes(8, "big")]

    def encode(self, nhs_number: str, client_id: str) -> str:
        """The id of `nhs_number` for `client_id` in the current epoch."""
        sealed = self._siv.encrypt(nhs_number.encode(), self._aad(client_id, self._epoch()))
        return _PREFIX + base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()

    def decode(self, child_id: str, client_id: str) -> str | None:
        """The NHS number behind `child_id`, or None if foreign, expired, forged or malformed."""
        if not child_id.startswith(_PREFIX) or len(child_id) > _MAX_ID_LENGTH:
            return None
        body = child_id[len(_PREFIX):]
        try:
            sealed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            return None
        epoch = self._epoch()
        for candidate in (epoch, epoch - 1):
            try:
                plain = self._siv.decrypt(sealed, self._aad(client_id, candidate))
            except (InvalidTag, ValueError):
                continue
            return plain.decode("ascii", errors="replace")
        return None
