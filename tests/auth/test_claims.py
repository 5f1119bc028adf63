"""The pure rules (header and claims) under arbitrary JSON: a Caller or a 401, never a crash."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.auth import Caller, TokenRejectedError
from gateway.auth.claims import caller_from_claims
from gateway.auth.tokens import bearer_token, check_header
from tests.auth.helpers import START, auth_settings, standard_claims

SETTINGS = auth_settings("https://issuer.test.invalid/jwks.json")
ALGORITHMS = frozenset(SETTINGS.algorithms)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
CLAIM_NAMES = ("iss", "aud", "sub", "client_id", "scope", "amr", "org", "exp", "nbf", "iat", "jti")


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(CLAIM_NAMES), json_values))
def test_any_claim_values_give_a_caller_or_a_rejection(overrides):
    claims = {**standard_claims(START), **overrides}
    try:
        caller = caller_from_claims(claims, SETTINGS, START)
    except TokenRejectedError:
        return
    assert isinstance(caller, Caller)
    assert isinstance(caller.subject, str)
    assert caller.subject
    assert isinstance(caller.client_id, str)
    assert caller.amr & set(SETTINGS.mfa_values)
    assert all(isinstance(scope, str) and scope for scope in caller.scopes)
    assert caller.expires_at > START - SETTINGS.leeway_seconds - 1


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(("alg", "typ", "kid", "jku", "jwk", "crit", "x5u", "cty"))
        | st.text(max_size=5),
        json_values,
    )
)
def test_any_header_gives_alg_and_kid_or_a_rejection(header):
    try:
        alg, kid = check_header(header, ALGORITHMS)
    except TokenRejectedError:
        return
    assert alg in ALGORITHMS
    assert isinstance(kid, str)
    assert kid


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=60)))
def test_any_authorization_value_gives_a_compact_token_or_a_rejection(authorization):
    try:
        token = bearer_token(authorization, 50)
    except TokenRejectedError:
        return
    assert token.count(".") == 2
    assert token.isascii()
    assert len(token) <= 50


def test_header_checks_come_in_the_documented_order():
    # alg first: a forbidden alg is refused whatever else is wrong.
    assert reason(check_header, {"alg": "HS256", "jku": "https://x.invalid"}) == "alg not allowed"
    assert reason(check_header, {"alg": "ES256", "jku": "https://x.invalid"}) == "forbidden header"
    assert reason(check_header, {"alg": "ES256", "typ": "at+jwt"}) == "no kid"
    assert check_header({"alg": "ES256", "typ": "at+jwt", "kid": "k"}, ALGORITHMS) == ("ES256", "k")


def reason(check, header):
    with pytest.raises(TokenRejectedError) as info:
        check(header, ALGORITHMS)
    return info.value.reason


def test_scopes_split_on_single_spaces_only():
    caller = caller_from_claims({**standard_claims(START), "scope": " a  b\tc "}, SETTINGS, START)
    assert caller.scopes == frozenset({"a", "b\tc"})


def test_a_fractional_exp_is_floored():
    caller = caller_from_claims({**standard_claims(START), "exp": START + 100.9}, SETTINGS, START)
    assert caller.expires_at == int(START) + 100


def test_roles_and_subject_nhs_number_claims():
    settings = auth_settings("https://issuer.test.invalid/jwks")
    claims = {**standard_claims(START), "roles": ["dpo", "social-worker"],
              "subject_nhs_number": "9434765919"}
    caller = caller_from_claims(claims, settings, START)
    assert caller.roles == {"dpo", "social-worker"}
    assert caller.subject_nhs_number == "9434765919"
    assert "9434765919" not in repr(caller)
    plain = caller_from_claims(standard_claims(START), settings, START)
    assert (plain.roles, plain.subject_nhs_number) == (frozenset(), None)


@pytest.mark.parametrize("bad", [{"roles": "dpo"}, {"roles": [1]}, {"subject_nhs_number": 9},
                                 {"subject_nhs_number": ""}])
def test_wrongly_typed_roles_or_subject_claims_are_rejected(bad):
    settings = auth_settings("https://issuer.test.invalid/jwks")
    with pytest.raises(TokenRejectedError):
        caller_from_claims({**standard_claims(START), **bad}, settings, START)
