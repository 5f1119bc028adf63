"""usable_keys and key_fits: only public signature keys that fit the allow-list survive."""

from __future__ import annotations

import logging

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import ECKey, OKPKey, RSAKey

from gateway.auth.keys import JwksDocumentError, key_fits, usable_keys
from tests.auth.helpers import b64url, public

ALLOWED = ("ES256", "RS256", "PS256", "EdDSA")


def short_rsa_jwk() -> dict:
    # Built by hand: joserfc warns (an error in this suite) when importing one.
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - to be refused
    numbers = weak.public_key().public_numbers()
    return {
        "kty": "RSA",
        "kid": "rsa-short",
        "n": b64url(numbers.n.to_bytes(128, "big")),
        "e": b64url(numbers.e.to_bytes(3, "big")),
    }


def test_public_signature_keys_are_kept(keys):
    found = usable_keys({"keys": public(keys.es256, keys.rs256, keys.ed25519)}, ALLOWED)
    assert sorted(found) == ["ed-1", "es-1", "rsa-1"]
    assert all(not key.is_private for key in found.values())


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        ("a string", "not a JSON object"),
        ({"kty": "EC", "kid": "x"}, "not an importable key"),
        (
            {"kty": "EC", "kid": "x", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
            "not an importable key",
        ),
        ({"kty": "oct", "kid": "x", "k": "c2VjcmV0"}, "private or symmetric key material"),
        ({"kty": "XYZ", "kid": "x"}, "not an importable key"),
    ],
)
def test_garbage_members_are_dropped_with_a_reason(member, reason, caplog):
    with caplog.at_level(logging.WARNING, logger="gateway.auth.keys"):
        assert usable_keys({"keys": [member]}, ALLOWED) == {}
    assert reason in caplog.text


def test_private_material_is_dropped_and_never_logged(keys, caplog):
    private = dict(keys.es256.as_dict(private=True))
    with caplog.at_level(logging.WARNING, logger="gateway.auth.keys"):
        assert usable_keys({"keys": [private]}, ALLOWED) == {}
    assert "private" in caplog.text
    assert private["d"] not in caplog.text


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"use": "enc"}, "use is not sig"),
        ({"key_ops": ["encrypt"]}, "key_ops does not allow verify"),
        ({"key_ops": "verify"}, "key_ops does not allow verify"),
        ({"kid": ""}, "no kid"),
        ({"kid": 5}, "no kid"),
        ({"alg": "HS256"}, "alg not in the allow-list"),
        ({"alg": "ES512"}, "alg not in the allow-list"),
        ({"alg": "RS256"}, "fits no allowed algorithm"),  # an EC key claiming an RSA algorithm
    ],
)
def test_keys_not_for_our_signatures_are_dropped(keys, extra, reason, caplog):
    member = {**public(keys.es256)[0], **extra}
    with caplog.at_level(logging.WARNING, logger="gateway.auth.keys"):
        assert usable_keys({"keys": [member]}, ALLOWED) == {}
    assert reason in caplog.text


def test_a_member_without_kid_is_dropped(keys):
    member = public(keys.es256)[0]
    del member["kid"]
    assert usable_keys({"keys": [member]}, ALLOWED) == {}


def test_key_ops_with_verify_is_kept(keys):
    member = {**public(keys.es256)[0], "key_ops": ["verify"]}
    assert list(usable_keys({"keys": [member]}, ALLOWED)) == ["es-1"]


def test_short_rsa_keys_are_dropped_without_a_warning():
    assert usable_keys({"keys": [short_rsa_jwk()]}, ALLOWED) == {}


@pytest.mark.parametrize("n", [5, None, "!!!", "A"])
def test_rsa_keys_with_an_unreadable_modulus_are_dropped(n, caplog):
    member = {**short_rsa_jwk(), "n": n}
    with caplog.at_level(logging.WARNING, logger="gateway.auth.keys"):
        assert usable_keys({"keys": [member]}, ALLOWED) == {}
    assert "RSA modulus too short" in caplog.text


def test_keys_of_types_outside_the_allow_list_are_dropped(keys):
    x25519 = OKPKey.generate_key("X25519", {"kid": "x-1"})
    members = public(keys.es512, keys.rs256, keys.ed25519, x25519)
    assert usable_keys({"keys": members}, ("ES256",)) == {}
    assert list(usable_keys({"keys": members}, ("ES512",))) == ["es512-1"]
    assert list(usable_keys({"keys": members}, ("PS256",))) == ["rsa-1"]


def test_a_repeated_kid_is_ambiguous_and_dropped(keys):
    members = public(keys.es256, keys.es256_impostor, keys.rs256)
    assert list(usable_keys({"keys": members}, ALLOWED)) == ["rsa-1"]


@pytest.mark.parametrize(
    "document", [None, [], "keys", {"keys": None}, {"keys": {}}, {"other": []}]
)
def test_a_document_that_is_not_a_jwk_set_is_an_error(document):
    with pytest.raises(JwksDocumentError):
        usable_keys(document, ALLOWED)


@pytest.mark.parametrize(
    ("alg", "fits"),
    [
        ("ES256", {"p256"}),
        ("ES384", {"p384"}),
        ("ES512", set()),
        ("RS256", {"rsa", "rsa_rs256"}),
        ("PS256", {"rsa"}),
        ("EdDSA", {"ed25519"}),
        ("HS256", set()),
        ("none", set()),
    ],
)
def test_key_fits_type_curve_and_bound_alg(keys, alg, fits):
    candidates = {
        "p256": keys.es256,
        "p384": ECKey.generate_key("P-384", {"kid": "p384"}),
        "rsa": keys.rs256,
        "rsa_rs256": RSAKey.import_key(public(keys.rs256)[0], {"alg": "RS256"}),
        "ed25519": keys.ed25519,
    }
    assert {name for name, key in candidates.items() if key_fits(alg, key)} == fits
