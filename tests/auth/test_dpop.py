"""RFC 9449 DPoP: bound tokens, proofs, replay, and the per-client requirement."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat

import pytest
from joserfc.jwk import ECKey, RSAKey
from joserfc.jws import JWSRegistry

from gateway.auth import TokenRejectedError, TokenValidator
from gateway.auth.dpop import (
    DpopProofRejectedError,
    DpopRequest,
    ProofKeyCache,
    ProofReplayCache,
    access_token_hash,
    challenge,
    load_or_create_key,
    make_proof,
    normalise_htu,
)
from tests.auth.helpers import OMIT, auth_settings, b64url, make_token, segment, sign

URL = "https://gateway.test.invalid/graphql"


@pytest.fixture(scope="module")
def client_key() -> ECKey:
    return ECKey.generate_key("P-256", private=True)


@pytest.fixture(scope="module")
def other_key() -> ECKey:
    return ECKey.generate_key("P-256", private=True)


def bound_token(keys, clock, client_key, **claims):
    return make_token(keys.es256, clock(), claims={"cnf": {"jkt": client_key.thumbprint()},
                                                   **claims})


def request(proof: str, method: str = "POST", url: str = URL) -> DpopRequest:
    return DpopRequest((proof,), method, url)


async def reason(validator, authorization, dpop=None) -> str:
    with pytest.raises(TokenRejectedError) as caught:
        await validator.authenticate(authorization, dpop)
    assert str(caught.value) == "A valid multi-factor access token is required."
    return caught.value.reason


async def test_a_valid_dpop_request_is_accepted(validator, keys, clock, client_key):
    token = bound_token(keys, clock, client_key)
    proof = make_proof(client_key, "POST", URL, token, now=clock())
    caller = await validator.authenticate(f"DPoP {token}", request(proof))
    assert caller.client_id == "case-system"


async def test_an_rsa_proof_key_is_accepted(validator, keys, clock):
    rsa = RSAKey.generate_key(2048, private=True)
    token = bound_token(keys, clock, rsa)
    proof = make_proof(rsa, "POST", URL, token, alg="RS256", now=clock())
    assert (await validator.authenticate(f"dpop {token}", request(proof))).subject == "user-7"


async def test_a_bound_token_with_a_proof_from_another_key_is_refused(
        validator, keys, clock, client_key, other_key):
    token = bound_token(keys, clock, client_key)
    stolen = make_proof(other_key, "POST", URL, token, now=clock())
    assert await reason(validator, f"DPoP {token}", request(stolen)) == \
        "proof key does not match cnf.jkt"


async def test_the_same_proof_twice_is_refused(validator, keys, clock, client_key):
    token = bound_token(keys, clock, client_key)
    proof = make_proof(client_key, "POST", URL, token, now=clock())
    await validator.authenticate(f"DPoP {token}", request(proof))
    assert await reason(validator, f"DPoP {token}", request(proof)) == "proof replayed"
    fresh = make_proof(client_key, "POST", URL, token, now=clock())
    assert (await validator.authenticate(f"DPoP {token}", request(fresh))).subject == "user-7"


async def test_a_bound_token_sent_as_bearer_is_refused(validator, keys, clock, client_key):
    token = bound_token(keys, clock, client_key)
    assert await reason(validator, f"Bearer {token}") == "bound token sent as bearer"
    # Also once the token is in the validated-token cache.
    await validator.authenticate(f"DPoP {token}",
                                 request(make_proof(client_key, "POST", URL, token, now=clock())))
    assert await reason(validator, f"Bearer {token}") == "bound token sent as bearer"


async def test_the_dpop_scheme_with_an_unbound_token_is_refused(
        validator, keys, clock, client_key):
    token = make_token(keys.es256, clock())
    proof = make_proof(client_key, "POST", URL, token, now=clock())
    assert await reason(validator, f"DPoP {token}", request(proof)) == \
        "dpop scheme with an unbound token"


async def test_the_dpop_scheme_without_request_details_is_refused(
        validator, keys, clock, client_key):
    assert await reason(validator, f"DPoP {bound_token(keys, clock, client_key)}") == \
        "dpop request details missing"


@pytest.mark.parametrize("proofs", [(), ("a", "b")])
async def test_not_exactly_one_proof_is_refused(validator, keys, clock, client_key, proofs):
    token = bound_token(keys, clock, client_key)
    proofs = tuple(make_proof(client_key, "POST", URL, token, now=clock()) for _ in proofs)
    assert await reason(validator, f"DPoP {token}", DpopRequest(proofs, "POST", URL)) == \
        "not exactly one DPoP proof"


@pytest.mark.parametrize(
    ("method", "url", "age", "expected"),
    [
        ("GET", URL, 0, "proof htm"),
        ("post", URL, 0, "proof htm"),
        ("POST", "https://evil.test.invalid/graphql", 0, "proof htu"),
        ("POST", "http://gateway.test.invalid/graphql", 0, "proof htu"),
        ("POST", "https://gateway.test.invalid/other", 0, "proof htu"),
        ("POST", URL, 61, "proof iat"),
        ("POST", URL, -61, "proof iat"),
    ],
)
async def test_a_proof_for_another_request_or_time_is_refused(
        validator, keys, clock, client_key, method, url, age, expected):
    token = bound_token(keys, clock, client_key)
    proof = make_proof(client_key, method, url, token, now=clock() - age)
    assert await reason(validator, f"DPoP {token}", request(proof)) == expected


async def test_htu_ignores_query_fragment_case_and_default_port(
        validator, keys, clock, client_key):
    token = bound_token(keys, clock, client_key)
    proof = make_proof(client_key, "POST", "HTTPS://Gateway.Test.Invalid:443/graphql", token,
                       now=clock())
    seen = "https://gateway.test.invalid/graphql?x=1#f"
    assert (await validator.authenticate(f"DPoP {token}", request(proof, url=seen))).subject


async def test_a_proof_for_another_token_is_refused(validator, keys, clock, client_key):
    token = bound_token(keys, clock, client_key)
    other = bound_token(keys, clock, client_key, jti="token-2")
    proof = make_proof(client_key, "POST", URL, other, now=clock())
    assert await reason(validator, f"DPoP {token}", request(proof)) == "proof ath"
    no_ath = make_proof(client_key, "POST", URL, None, now=clock())
    assert await reason(validator, f"DPoP {token}", request(no_ath)) == "proof ath"


def proof_claims(clock, token):
    return {"jti": "p-1", "htm": "POST", "htu": URL, "iat": int(clock()),
            "ath": access_token_hash(token)}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ({"typ": "JWT"}, "proof typ"),
        ({"typ": OMIT}, "proof typ"),
        ({"alg": "ES512"}, "proof alg not allowed"),
        ({"jwk": OMIT}, "proof jwk missing or private"),
        ({"jwk": "private"}, "proof jwk missing or private"),
        ({"crit": ["exp"]}, "proof forbidden header"),
    ],
)
async def test_a_malformed_proof_header_is_refused(
        validator, keys, clock, client_key, header, expected):
    token = bound_token(keys, clock, client_key)
    values = {"typ": "dpop+jwt", "alg": "ES256",
              "jwk": dict(client_key.as_dict(private=False)), **header}
    if values["jwk"] == "private":
        values["jwk"] = dict(client_key.as_dict(private=True))
    values = {k: v for k, v in values.items() if v is not OMIT}
    proof = sign(values, proof_claims(clock, token), client_key, "ES256")
    assert await reason(validator, f"DPoP {token}", request(proof)) == expected


async def test_a_proof_with_a_bad_signature_is_refused(
        validator, keys, clock, client_key, other_key):
    token = bound_token(keys, clock, client_key)
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": dict(client_key.as_dict(private=False))}
    forged = sign(header, proof_claims(clock, token), other_key, "ES256")
    assert await reason(validator, f"DPoP {token}", request(forged)) == \
        "proof signature or payload"


async def test_a_proof_without_jti_is_refused(validator, keys, clock, client_key):
    token = bound_token(keys, clock, client_key)
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": dict(client_key.as_dict(private=False))}
    claims = {k: v for k, v in proof_claims(clock, token).items() if k != "jti"}
    proof = sign(header, claims, client_key, "ES256")
    assert await reason(validator, f"DPoP {token}", request(proof)) == "proof jti"


async def test_a_token_without_jti_is_refused(validator, keys, clock):
    token = make_token(keys.es256, clock(), claims={"jti": OMIT})
    assert await reason(validator, f"Bearer {token}") == "missing_claim: jti"


@pytest.mark.parametrize(
    ("cnf", "expected"),
    [("x", "wrong type: cnf"), ({"x5t#S256": "abc"}, "unsupported cnf"),
     ({"jkt": 5}, "wrong type: cnf.jkt")],
)
async def test_an_unusable_cnf_is_refused(validator, keys, clock, cnf, expected):
    token = make_token(keys.es256, clock(), claims={"cnf": cnf})
    assert await reason(validator, f"Bearer {token}") == expected


async def test_dpop_required_refuses_unbound_tokens(server, jwks, keys, clock, client_key):
    validator = TokenValidator(auth_settings(server.url, dpop="required"), jwks, clock=clock)
    assert await reason(validator, f"Bearer {make_token(keys.es256, clock())}") == \
        "dpop required"
    token = bound_token(keys, clock, client_key)
    proof = make_proof(client_key, "POST", URL, token, now=clock())
    assert (await validator.authenticate(f"DPoP {token}", request(proof))).subject == "user-7"


async def test_dpop_can_be_required_per_client(server, jwks, keys, clock):
    settings = auth_settings(server.url, dpop_required_clients=("case-system",))
    validator = TokenValidator(settings, jwks, clock=clock)
    assert await reason(validator, f"Bearer {make_token(keys.es256, clock())}") == \
        "dpop required"
    other = make_token(keys.es256, clock(), claims={"client_id": "other-system"})
    assert (await validator.authenticate(f"Bearer {other}")).client_id == "other-system"


async def test_a_configured_public_url_is_what_htu_must_match(
        server, jwks, keys, clock, client_key):
    public = "https://api.example.invalid/gw/graphql"
    validator = TokenValidator(auth_settings(server.url, dpop_public_url=public), jwks,
                               clock=clock)
    token = bound_token(keys, clock, client_key)
    behind_proxy = "http://10.0.0.7:8000/graphql"
    good = make_proof(client_key, "POST", public, token, now=clock())
    assert (await validator.authenticate(f"DPoP {token}", request(good, url=behind_proxy)))
    bad = make_proof(client_key, "POST", behind_proxy, token, now=clock())
    assert await reason(validator, f"DPoP {token}", request(bad, url=behind_proxy)) == \
        "proof htu"


async def test_the_in_process_replay_cache_forgets_after_the_ttl_and_is_bounded():
    now = [0.0]
    cache = ProofReplayCache(max_entries=2, clock=lambda: now[0])
    assert await cache.first_use("k", "a", 10)
    assert not await cache.first_use("k", "a", 10)
    assert await cache.first_use("other-key", "a", 10)
    now[0] = 11
    assert await cache.first_use("k", "a", 10)
    assert await cache.first_use("k", "b", 10)
    assert await cache.first_use("k", "c", 10)
    assert len(cache._seen) == 2


def test_challenge_offers_both_schemes_and_flags_only_proof_errors():
    assert challenge(["ES256", "EdDSA"]) == 'Bearer realm="contactpoint", DPoP algs="ES256 EdDSA"'
    assert challenge(["ES256"], DpopProofRejectedError("proof htm")).endswith(
        'error="invalid_dpop_proof"')
    assert "error" not in challenge(["ES256"], TokenRejectedError("expired"))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://H.example/graphql?q=1#x", "https://h.example/graphql"),
        ("http://h.example:80", "http://h.example/"),
        ("https://h.example:8443/a", "https://h.example:8443/a"),
        ("https://[::1]:443/a", "https://[::1]/a"),
        ("ftp://h.example/a", ""),
        ("https://h.example:99999/a", ""),
        ("/graphql", ""),
    ],
)
def test_normalise_htu(url, expected):
    assert normalise_htu(url) == expected


def test_ath_is_base64url_sha256_of_the_token():
    assert access_token_hash("abc") == b64url(hashlib.sha256(b"abc").digest())


def test_the_key_file_is_created_private_and_reused(tmp_path):
    path = tmp_path / "dpop.pem"
    key = load_or_create_key(str(path))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_key(str(path)).thumbprint() == key.thumbprint()
    path.write_bytes(key.as_pem(private=False))
    with pytest.raises(ValueError, match="EC P-256 private key"):
        load_or_create_key(str(path))


async def test_an_eddsa_proof_key_is_accepted(validator, keys, clock):
    from joserfc.jwk import OKPKey

    ed = OKPKey.generate_key("Ed25519", private=True)
    token = bound_token(keys, clock, ed)
    proof = make_proof(ed, "POST", URL, token, alg="EdDSA", now=clock())
    assert (await validator.authenticate(f"DPoP {token}", request(proof))).subject == "user-7"


async def test_a_short_rsa_proof_key_is_refused_before_import(validator, keys, clock):
    from joserfc.errors import SecurityWarning

    with pytest.warns(SecurityWarning):  # joserfc itself only warns about a 1024-bit key
        short = RSAKey.generate_key(1024, private=True)
    token = bound_token(keys, clock, short)
    header = {"typ": "dpop+jwt", "alg": "RS256", "jwk": dict(short.as_dict(private=False))}
    proof = sign(header, proof_claims(clock, token), short, "RS256")
    assert await reason(validator, f"DPoP {token}", request(proof)) == \
        "proof jwk RSA modulus too short"


async def test_a_nan_iat_is_refused(validator, keys, clock, client_key):
    token = bound_token(keys, clock, client_key)
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": dict(client_key.as_dict(private=False))}
    ath = access_token_hash(token)
    payload = f'{{"jti": "p-nan", "htm": "POST", "htu": "{URL}", "iat": NaN, "ath": "{ath}"}}'
    proof = sign(header, payload.encode(), client_key, "ES256")
    assert await reason(validator, f"DPoP {token}", request(proof)) == "proof iat"


async def test_an_unusable_request_url_matches_no_htu(validator, keys, clock, client_key):
    token = bound_token(keys, clock, client_key)
    proof = make_proof(client_key, "POST", "not a url", token, now=clock())
    assert await reason(validator, f"DPoP {token}", request(proof, url="not a url")) == \
        "proof htu"


@pytest.mark.parametrize(
    ("proof", "expected"),
    [("", "proof missing or too long"), ("a" * 4_097, "proof missing or too long"),
     ("not.a-proof", "proof malformed"), ("é.b.c", "proof malformed")],
)
async def test_an_unreadable_proof_is_refused(validator, keys, clock, client_key, proof,
                                              expected):
    token = bound_token(keys, clock, client_key)
    assert await reason(validator, f"DPoP {token}", request(proof)) == expected


@pytest.mark.parametrize(
    ("jwk", "alg", "expected"),
    [({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}, "ES256", "proof jwk unusable"),
     (None, "PS256", "proof jwk does not fit alg")],
)
async def test_a_proof_jwk_that_cannot_verify_is_refused(
        validator, keys, clock, client_key, jwk, alg, expected):
    token = bound_token(keys, clock, client_key)
    header = {"typ": "dpop+jwt", "alg": alg,
              "jwk": jwk or dict(client_key.as_dict(private=False))}
    proof = sign(header, proof_claims(clock, token), client_key, "ES256")
    assert await reason(validator, f"DPoP {token}", request(proof)) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ({"alg": "none"}, "proof alg not allowed"),
        ({"alg": "HS256"}, "proof alg not allowed"),
        ({"alg": 256}, "proof alg not allowed"),
        ({"typ": "DPoP+JWT"}, "proof typ"),
        ({"kid": 5}, "proof malformed"),
    ],
)
async def test_a_proof_header_refused_even_with_a_valid_signature(
        validator, keys, clock, client_key, header, expected):
    token = bound_token(keys, clock, client_key)
    values = {"typ": "dpop+jwt", "alg": "ES256",
              "jwk": dict(client_key.as_dict(private=False)), **header}
    signing_input = f"{segment(values)}.{segment(proof_claims(clock, token))}"
    signature = JWSRegistry.algorithms["ES256"].sign(signing_input.encode(), client_key)
    proof = f"{signing_input}.{b64url(signature)}"
    assert await reason(validator, f"DPoP {token}", request(proof)) == expected


async def test_an_hmac_proof_with_the_public_key_as_secret_is_refused(
        validator, keys, clock, client_key):
    token = bound_token(keys, clock, client_key)
    jwk = dict(client_key.as_dict(private=False))
    header = {"typ": "dpop+jwt", "alg": "HS256", "jwk": jwk}
    signing_input = f"{segment(header)}.{segment(proof_claims(clock, token))}"
    mac = hmac.new(json.dumps(jwk).encode(), signing_input.encode(), hashlib.sha256).digest()
    proof = f"{signing_input}.{b64url(mac)}"
    assert await reason(validator, f"DPoP {token}", request(proof)) == "proof alg not allowed"


@pytest.mark.parametrize(
    "htu",
    [f"{URL}?a=1", f"{URL}#frag", f"{URL}?", "https://gateway.test.invalid:443/graphql?x"],
)
async def test_a_proof_htu_with_a_query_or_fragment_is_refused(
        validator, keys, clock, client_key, htu):
    token = bound_token(keys, clock, client_key)
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": dict(client_key.as_dict(private=False))}
    proof = sign(header, {**proof_claims(clock, token), "htu": htu}, client_key, "ES256")
    assert await reason(validator, f"DPoP {token}", request(proof)) == "proof htu"


def _tampered(proof: str, part: int, value: str) -> str:
    parts = proof.split(".")
    parts[part] = value
    return ".".join(parts)


@pytest.mark.parametrize(
    ("part", "value", "expected"),
    [
        (0, "!!!", "proof malformed"),
        (0, "e30=", "proof malformed"),  # padding is not base64url as JWS uses it
        (0, "A", "proof malformed"),  # a length no encoding has
        (0, b64url(b"{not json"), "proof malformed"),
        (0, b64url(b"[1, 2]"), "proof malformed"),
        (0, b64url(b"[" * 1_000 + b"]" * 1_000), "proof malformed"),
        (1, "A", "proof signature or payload"),
        (1, "!!!", "proof malformed"),
        (2, "", "proof malformed"),
        (2, "A", "proof signature or payload"),
        (2, b64url(b"\x00" * 64), "proof signature or payload"),
        (2, b64url(b"\x01" * 63), "proof signature or payload"),
    ],
)
async def test_a_proof_with_a_damaged_segment_is_refused(
        validator, keys, clock, client_key, part, value, expected):
    token = bound_token(keys, clock, client_key)
    proof = _tampered(make_proof(client_key, "POST", URL, token, now=clock()), part, value)
    assert await reason(validator, f"DPoP {token}", request(proof)) == expected


async def test_a_payload_that_is_signed_but_not_an_object_is_refused(
        validator, keys, clock, client_key):
    token = bound_token(keys, clock, client_key)
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": dict(client_key.as_dict(private=False))}
    for payload in (b"[1]", b"not json"):
        proof = sign(header, payload, client_key, "ES256")
        assert await reason(validator, f"DPoP {token}", request(proof)) == \
            "proof signature or payload"


async def test_a_jwk_whose_use_forbids_verify_is_refused(validator, keys, clock, client_key):
    token = bound_token(keys, clock, client_key)
    jwk = {**client_key.as_dict(private=False), "key_ops": ["encrypt"]}
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}
    proof = sign(header, proof_claims(clock, token), client_key, "ES256")
    assert await reason(validator, f"DPoP {token}", request(proof)) == "proof jwk unusable"


async def test_a_remembered_key_is_still_held_to_every_check(
        validator, keys, clock, client_key, other_key):
    """The second proof from a client hits the key cache; nothing else is skipped."""
    token = bound_token(keys, clock, client_key)
    good = make_proof(client_key, "POST", URL, token, now=clock())
    assert await validator.authenticate(f"DPoP {token}", request(good))
    signing_input = f"{good.split('.')[0]}.{segment({**proof_claims(clock, token), 'jti': 'p-2'})}"
    signature = JWSRegistry.algorithms["ES256"].sign(signing_input.encode(), other_key)
    forged = f"{signing_input}.{b64url(signature)}"
    assert await reason(validator, f"DPoP {token}", request(forged)) == \
        "proof signature or payload"
    late = make_proof(client_key, "POST", URL, token, now=clock() - 61)
    assert await reason(validator, f"DPoP {token}", request(late)) == "proof iat"
    elsewhere = make_proof(client_key, "GET", URL, token, now=clock())
    assert await reason(validator, f"DPoP {token}", request(elsewhere)) == "proof htm"
    other_token = bound_token(keys, clock, other_key)
    stolen = make_proof(client_key, "POST", URL, other_token, now=clock())
    assert await reason(validator, f"DPoP {other_token}", request(stolen)) == \
        "proof key does not match cnf.jkt"
    assert await reason(validator, f"DPoP {token}", request(good)) == "proof replayed"


def test_the_key_cache_is_bounded_and_applies_the_allow_list_on_every_hit(client_key):
    cache = ProofKeyCache(max_entries=2)
    jwk = dict(client_key.as_dict(private=False))
    headers = [segment({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk, "kid": f"k{n}"})
               for n in range(3)]
    allowed = frozenset({"ES256"})
    checked = [cache.get(header, allowed) for header in headers]
    assert {entry.thumbprint for entry in checked} == {client_key.thumbprint()}
    assert len(cache._entries) == 2
    assert cache.get(headers[2], allowed) is checked[2]
    with pytest.raises(DpopProofRejectedError) as caught:
        cache.get(headers[2], frozenset({"RS256"}))
    assert caught.value.reason == "proof alg not allowed"
    with pytest.raises(DpopProofRejectedError) as caught:
        cache.get(segment({"typ": "JWT", "alg": "ES256", "jwk": jwk}), allowed)
    assert caught.value.reason == "proof typ"
    assert len(cache._entries) == 2
