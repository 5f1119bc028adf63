"""Purpose-bound keys, and the HMACs under them: the same bytes as a fresh `hmac.new`."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from gateway.crypto.keys import HmacKey, derive_hmac, derive_key
from gateway.crypto.pseudonyms import Pseudonymiser

SECRET = "a-test-secret-" + "x" * 24


@pytest.mark.parametrize("message", [b"", b"9990000018", b"client:abc\x1forg\x1f2026-12-04",
                                     "é✓".encode(), b"x" * 200])
def test_hmac_key_is_hmac_sha256(message):
    key = derive_key(SECRET, "purpose")
    mac = HmacKey(key)
    expected = hmac.new(key, message, hashlib.sha256).hexdigest()
    assert mac.hexdigest(message) == expected
    assert mac.hexdigest(b"other") == hmac.new(key, b"other", hashlib.sha256).hexdigest()
    assert mac.hexdigest(message) == expected  # each message starts from the key alone


def test_derive_hmac_is_keyed_by_secret_and_purpose():
    assert derive_hmac(SECRET, "one") is derive_hmac(SECRET, "one")
    message = b"9990000018"
    for purpose in ("one", "two"):
        assert derive_hmac(SECRET, purpose).hexdigest(message) == hmac.new(
            derive_key(SECRET, purpose), message, hashlib.sha256).hexdigest()
    assert derive_hmac(SECRET, "one").hexdigest(message) != derive_hmac(
        SECRET, "two").hexdigest(message)


def test_pseudonymiser_is_the_truncated_hmac_under_the_log_key():
    pseudonym = Pseudonymiser(SECRET)
    expected = hmac.new(derive_key(SECRET, "log-pseudonym"), b"user-1",
                        hashlib.sha256).hexdigest()[:16]
    assert pseudonym("user-1") == expected
    assert pseudonym.remembered("user-1") == expected
