"""TokenValidator end to end: real keys, a real JWKS server on loopback, every refusal a 401."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging

import pytest

from gateway.auth import Caller, TokenRejectedError, TokenValidator
from gateway.core.errors import UnauthenticatedError
from tests.auth.helpers import (
    AUDIENCE,
    OMIT,
    auth_settings,
    b64url,
    make_token,
    segment,
    sign,
    standard_claims,
)


async def rejected(validator, token_or_header, *, raw=False):
    """The reason a token (or a whole Authorization value, with raw=True) is refused."""
    authorization = token_or_header if raw else f"Bearer {token_or_header}"
    with pytest.raises(UnauthenticatedError) as info:
        await validator.authenticate(authorization)
    assert info.value.message == "A valid multi-factor access token is required."
    assert info.value.extensions == {"code": "UNAUTHENTICATED"}
    assert info.value.http_status == 401
    assert isinstance(info.value, TokenRejectedError)
    return info.value.reason


# --- accepted tokens -------------------------------------------------------------------------


async def test_valid_es256_token_gives_the_caller(validator, keys, clock):
    caller = await validator.authenticate(f"Bearer {make_token(keys.es256, clock())}")
    assert caller == Caller(
        subject="user-7",
        client_id="case-system",
        organisation="council-42",
        scopes=frozenset({"child.identity.read", "child.contact.read"}),
        amr=frozenset({"pwd", "mfa"}),
        expires_at=int(clock()) + 300,
        token_id="token-1",
    )
    assert "child.identity.read" in caller.scopes
    assert "child.shielded.read" not in caller.scopes
    assert "user-7" not in repr(caller)


@pytest.mark.parametrize(
    ("key_name", "alg"), [("rs256", "RS256"), ("rs256", "PS256"), ("ed25519", "EdDSA")]
)
async def test_other_allowed_algorithms_are_accepted(validator, keys, clock, key_name, alg):
    token = make_token(getattr(keys, key_name), clock(), alg=alg)
    assert (await validator.authenticate(f"Bearer {token}")).subject == "user-7"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
async def test_scheme_is_case_insensitive(validator, keys, clock, scheme):
    token = make_token(keys.es256, clock())
    assert (await validator.authenticate(f"{scheme} {token}")).client_id == "case-system"


async def test_optional_claims_may_be_absent(validator, keys, clock):
    token = make_token(
        keys.es256, clock(), claims=dict.fromkeys(("org", "nbf", "iat", "scope"), OMIT)
    )
    caller = await validator.authenticate(f"Bearer {token}")
    assert caller.organisation is None
    assert caller.token_id == "token-1"
    assert caller.scopes == frozenset()


async def test_empty_scope_means_no_scopes(validator, keys, clock):
    caller = await validator.authenticate(
        f"Bearer {make_token(keys.es256, clock(), claims={'scope': ''})}"
    )
    assert caller.scopes == frozenset()


# --- the Authorization header ----------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Bearer    ", "Basic dXNlcjpwYXNz", "Token abc.def.ghi"],
)
async def test_missing_or_other_credentials_are_refused(validator, server, authorization):
    with pytest.raises(UnauthenticatedError):
        await validator.authenticate(authorization)
    assert server.fetches == 0


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "abc.def",  # two segments
        "a.b.c.d",  # four segments
        "a.b.c.d.e",  # a JWE has five
        "!!!.???.***",  # not base64url
        "eyJ.eyJ.sig",  # base64url of broken JSON
        "abcde.abcd.abcd",  # a length no base64 has
        f"{segment([1, 2])}.{segment({})}.c2ln",  # header is not an object
        f"{segment('alg')}.{segment({})}.c2ln",  # header is a string
        f"{segment({'typ': 'at+jwt'})}.{segment({})}.c2ln",  # no alg at all
        "é.é.é",
    ],
)
async def test_malformed_tokens_are_refused_before_any_key_lookup(validator, server, token):
    assert await rejected(validator, token) in {"malformed", "alg not allowed"}
    assert server.fetches == 0


async def test_a_token_over_the_size_limit_is_refused_before_parsing(
    validator, server, keys, clock
):
    token = make_token(keys.es256, clock(), claims={"pad": "x" * 4096})
    assert await rejected(validator, token) == "too long"
    assert server.fetches == 0


# --- the protected header --------------------------------------------------------------------


async def test_alg_none_is_refused(validator, server, clock):
    header = segment({"alg": "none", "typ": "at+jwt", "kid": "es-1"})
    payload = segment(make_claims(clock))
    assert await rejected(validator, f"{header}.{payload}.") == "malformed"
    for spelling in ("none", "None", "NONE"):
        header = segment({"alg": spelling, "typ": "at+jwt", "kid": "es-1"})
        assert await rejected(validator, f"{header}.{payload}.AAAA") == "alg not allowed"
    assert server.fetches == 0


async def test_hs256_with_the_public_key_as_hmac_secret_is_refused(validator, server, keys, clock):
    secret = keys.rs256.as_pem(private=False)
    assert secret.startswith(b"-----BEGIN PUBLIC KEY-----")
    header = segment({"alg": "HS256", "typ": "at+jwt", "kid": "rsa-1"})
    signing_input = f"{header}.{segment(make_claims(clock))}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    assert await rejected(validator, f"{signing_input}.{b64url(mac)}") == "alg not allowed"
    assert server.fetches == 0


async def test_an_algorithm_outside_the_allow_list_is_refused(validator, server, keys, clock):
    token = make_token(keys.es512, clock(), alg="ES512")
    assert await rejected(validator, token) == "alg not allowed"
    assert server.fetches == 0


@pytest.mark.parametrize(
    ("typ", "accepted"),
    [
        ("at+jwt", True),
        ("application/at+jwt", True),
        ("AT+JWT", True),
        ("Application/AT+JWT", True),
        ("JWT", False),
        ("jwt", False),
        ("", False),
        (5, False),
        (OMIT, False),
    ],
)
async def test_typ_must_name_an_access_token(validator, keys, clock, typ, accepted):
    token = make_token(keys.es256, clock(), header={"typ": typ})
    if accepted:
        assert (await validator.authenticate(f"Bearer {token}")).subject == "user-7"
    else:
        assert await rejected(validator, token) == "not an access token"


@pytest.mark.parametrize("kid", [OMIT, "", 7, None])
async def test_kid_is_required(validator, server, keys, clock, kid):
    assert (
        await rejected(validator, make_token(keys.es256, clock(), header={"kid": kid})) == "no kid"
    )
    assert server.fetches == 0


@pytest.mark.parametrize(
    "header",
    [
        {"jku": "https://attacker.invalid/jwks.json"},
        {"x5u": "https://attacker.invalid/cert.pem"},
        {"x5c": ["MIIB"]},
        {"crit": ["exp"]},
        {"b64": False, "crit": ["b64"]},
    ],
)
async def test_headers_that_bring_their_own_key_or_extensions_are_refused(
    validator, server, keys, clock, header
):
    assert (
        await rejected(validator, make_token(keys.es256, clock(), header=header))
        == "forbidden header"
    )
    assert server.fetches == 0


async def test_an_embedded_jwk_is_never_used(validator, keys, clock):
    attacker = keys.es256_impostor
    token = make_token(attacker, clock(), header={"jwk": dict(attacker.as_dict(private=False))})
    assert await rejected(validator, token) == "forbidden header"


async def test_unregistered_header_parameters_are_refused_by_joserfc(validator, keys, clock):
    # joserfc's strict header check: only parameters registered for JWS pass.
    assert (
        await rejected(validator, make_token(keys.es256, clock(), header={"x-custom": 1}))
        == "malformed"
    )


# --- keys ------------------------------------------------------------------------------------


async def test_an_unknown_kid_is_refused(validator, keys, clock):
    assert (
        await rejected(validator, make_token(keys.es256, clock(), header={"kid": "nope"}))
        == "unknown kid"
    )


async def test_a_key_of_the_wrong_type_for_alg_is_refused(validator, keys, clock):
    # RS256 header, kid of the EC key; and ES256 header, kid of the RSA key.
    assert (
        await rejected(validator, make_token(keys.rs256, clock(), header={"kid": "es-1"}))
        == "key does not fit alg"
    )
    assert (
        await rejected(validator, make_token(keys.es256, clock(), header={"kid": "rsa-1"}))
        == "key does not fit alg"
    )
    assert (
        await rejected(validator, make_token(keys.ed25519, clock(), header={"kid": "rsa-1"}))
        == "key does not fit alg"
    )


async def test_a_key_not_in_the_jwks_signing_with_a_published_kid_is_refused(
    validator, keys, clock
):
    assert keys.es256_impostor.kid == keys.es256.kid
    assert await rejected(validator, make_token(keys.es256_impostor, clock())) == "bad signature"


async def test_a_tampered_payload_is_refused(validator, keys, clock):
    header, _, signature = make_token(keys.es256, clock()).split(".")
    forged = segment({**make_claims(clock), "scope": "child.shielded.read"})
    assert await rejected(validator, f"{header}.{forged}.{signature}") == "bad signature"


# --- time ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": -11}, "expired_token: exp"),
        ({"exp": -10}, "expired_token: exp"),
        ({"nbf": 11}, "invalid_claim: nbf"),
        ({"iat": 11}, "invalid_claim: iat"),
    ],
)
async def test_times_beyond_the_leeway_are_refused(validator, keys, clock, claims, reason):
    now = int(clock())
    token = make_token(
        keys.es256, clock(), claims={name: now + offset for name, offset in claims.items()}
    )
    assert await rejected(validator, token) == reason


@pytest.mark.parametrize(
    "claims", [{"exp": -9}, {"exp": 1}, {"nbf": 10}, {"iat": 10}, {"iat": 5, "nbf": 5}]
)
async def test_times_within_the_leeway_are_accepted(validator, keys, clock, claims):
    now = int(clock())
    token = make_token(
        keys.es256, clock(), claims={name: now + offset for name, offset in claims.items()}
    )
    assert (await validator.authenticate(f"Bearer {token}")).subject == "user-7"


async def test_without_leeway_exp_is_exact(server, jwks, keys, clock):
    validator = TokenValidator(auth_settings(server.url, leeway_seconds=0), jwks, clock=clock)
    token = make_token(keys.es256, clock(), claims={"exp": int(clock()) + 1})
    assert (await validator.authenticate(f"Bearer {token}")).subject == "user-7"
    clock.advance(1)
    assert await rejected(validator, token) == "expired_token: exp"


async def test_a_cached_token_is_not_accepted_after_it_expires(validator, keys, clock):
    token = make_token(keys.es256, clock(), claims={"exp": int(clock()) + 60})
    await validator.authenticate(f"Bearer {token}")
    clock.advance(59)
    assert (await validator.authenticate(f"Bearer {token}")).subject == "user-7"
    clock.advance(11)  # past exp and the leeway
    assert await rejected(validator, token) == "expired_token: exp"


# --- issuer, audience, identity --------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "https://attacker.invalid/realm"}, "invalid_claim: iss"),
        ({"iss": "https://issuer.test.invalid/realm/"}, "invalid_claim: iss"),
        ({"iss": OMIT}, "missing_claim: iss"),
        ({"aud": "someone-else"}, "invalid_claim: aud"),
        ({"aud": ["someone-else", "another"]}, "invalid_claim: aud"),
        ({"aud": []}, "invalid_claim: aud"),
        ({"aud": OMIT}, "missing_claim: aud"),
        ({"exp": OMIT}, "missing_claim: exp"),
        ({"sub": OMIT}, "missing_claim: sub"),
        ({"sub": ""}, "invalid_claim: sub"),
        ({"client_id": OMIT}, "missing_claim: client_id"),
        ({"client_id": ""}, "invalid_claim: client_id"),
    ],
)
async def test_issuer_audience_and_identity_claims(validator, keys, clock, claims, reason):
    assert await rejected(validator, make_token(keys.es256, clock(), claims=claims)) == reason


async def test_an_audience_list_containing_ours_is_accepted(validator, keys, clock):
    token = make_token(keys.es256, clock(), claims={"aud": ["other-api", AUDIENCE]})
    assert (await validator.authenticate(f"Bearer {token}")).subject == "user-7"


# --- multi-factor ----------------------------------------------------------------------------


@pytest.mark.parametrize("amr", [OMIT, ["pwd"], [], None])
async def test_tokens_without_mfa_are_refused(validator, keys, clock, amr):
    assert (
        await rejected(validator, make_token(keys.es256, clock(), claims={"amr": amr}))
        == "missing MFA"
    )


async def test_configured_mfa_values_are_honoured(server, jwks, keys, clock):
    validator = TokenValidator(auth_settings(server.url, mfa_values=("hwk",)), jwks, clock=clock)
    assert (
        await rejected(validator, make_token(keys.es256, clock(), claims={"amr": ["mfa"]}))
        == "missing MFA"
    )
    caller = await validator.authenticate(
        f"Bearer {make_token(keys.es256, clock(), claims={'amr': ['pwd', 'hwk']})}"
    )
    assert caller.amr == frozenset({"pwd", "hwk"})


# --- claim types -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"scope": ["child.identity.read"]}, "wrong type: scope"),
        ({"scope": None}, "wrong type: scope"),
        ({"amr": "mfa"}, "wrong type: amr"),
        ({"amr": ["mfa", 1]}, "wrong type: amr"),
        ({"amr": {"mfa": True}}, "wrong type: amr"),
        ({"exp": "9999999999"}, "invalid_claim: exp"),
        ({"exp": True}, "invalid_claim: exp"),
        ({"exp": float("nan")}, "invalid_claim: exp"),
        ({"exp": float("inf")}, "invalid_claim: exp"),
        ({"nbf": "0"}, "invalid_claim: nbf"),
        ({"iat": [0]}, "invalid_claim: iat"),
        ({"sub": 7}, "invalid_claim: sub"),
        ({"client_id": 7}, "wrong type: client_id"),
        ({"client_id": ["case-system"]}, "wrong type: client_id"),
        ({"iss": ["https://issuer.test.invalid/realm"]}, "invalid_claim: iss"),
        ({"aud": {"aud": AUDIENCE}}, "invalid_claim: aud"),
        ({"aud": [AUDIENCE, 5]}, "invalid_claim: aud"),
        ({"org": 42}, "wrong type: org"),
        ({"org": ""}, "wrong type: org"),
        ({"jti": 5}, "invalid_claim: jti"),
    ],
)
async def test_claims_of_the_wrong_type_are_refused(validator, keys, clock, claims, reason):
    assert await rejected(validator, make_token(keys.es256, clock(), claims=claims)) == reason


@pytest.mark.parametrize("payload", [b"[1, 2]", b"not json", b'"a string"', b"{}" * 3])
async def test_payloads_that_are_not_claim_sets_are_refused(keys, validator, payload):
    token = sign({"alg": "ES256", "typ": "at+jwt", "kid": "es-1"}, payload, keys.es256, "ES256")
    assert await rejected(validator, token) == "malformed"


async def test_a_deeply_nested_signed_payload_is_a_401_not_a_500(server, jwks, keys):
    validator = TokenValidator(auth_settings(server.url, max_token_bytes=65_536), jwks)
    payload = b'{"a":' + b"[" * 5_000 + b"]" * 5_000 + b"}"
    token = sign({"alg": "ES256", "typ": "at+jwt", "kid": "es-1"}, payload, keys.es256, "ES256")
    assert await rejected(validator, token) == "malformed"


# --- what reaches the logs -------------------------------------------------------------------


async def test_the_reason_is_logged_at_debug_without_the_token_or_the_subject(
    validator, keys, clock, caplog
):
    token = make_token(
        keys.es256, clock(), claims={"exp": int(clock()) - 60, "sub": "jo.bloggs@example.org"}
    )
    with caplog.at_level(logging.DEBUG, logger="gateway.auth"):
        await rejected(validator, token)
    assert "expired_token: exp" in caplog.text
    for secret in (token, *token.split("."), "jo.bloggs"):
        assert secret not in caplog.text


def make_claims(clock):
    return standard_claims(clock())


def test_helpers_build_what_they_claim(keys):
    token = make_token(keys.es256, 0, header={"kid": OMIT})
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "ES256", "typ": "at+jwt"}
