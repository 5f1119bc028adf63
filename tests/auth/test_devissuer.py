"""The development issuer: a deterministic key, tokens the gateway accepts only in development."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from joserfc import jwk, jwt

from gateway.auth import JwksCache, TokenRejectedError, TokenValidator
from gateway.auth.devissuer import (
    DEV_AUDIENCE,
    DEV_ISSUER,
    JWKS_PATH,
    create_jwks_app,
    dev_auth_settings,
    dev_jwks,
    dev_key,
    mint_dev_token,
)
from tests.auth.helpers import FakeClock, auth_settings, make_token


@pytest.fixture
async def dev_jwks_url():
    server = TestServer(create_jwks_app(), host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url(JWKS_PATH))
    await server.close()


@pytest.fixture
async def dev_validator(dev_jwks_url):
    settings = dev_auth_settings(dev_jwks_url)
    async with JwksCache(settings) as cache:
        yield TokenValidator(settings, cache, allow_development_key=True)


def test_the_key_is_deterministic_and_its_kid_is_its_thumbprint():
    first = dev_key().as_dict(private=True)
    dev_key.cache_clear()
    second = dev_key().as_dict(private=True)
    assert first == second
    assert second["kty"] == "EC"
    assert second["crv"] == "P-256"
    assert second["kid"] == jwk.thumbprint({k: second[k] for k in ("kty", "crv", "x", "y")})


async def test_another_process_derives_the_same_public_key():
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import json; from gateway.auth.devissuer import dev_jwks; print(json.dumps(dev_jwks()))",
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await process.communicate()
    assert process.returncode == 0
    assert json.loads(stdout) == dev_jwks()


def test_the_jwks_is_public_only():
    (key,) = dev_jwks()["keys"]
    assert "d" not in key
    assert key["use"] == "sig"
    assert key["alg"] == "ES256"


async def test_the_jwks_app_serves_the_set(dev_jwks_url):
    async with ClientSession() as session, session.get(dev_jwks_url) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/jwk-set+json"
        assert json.loads(await resp.read()) == dev_jwks()


async def test_minted_tokens_validate_against_the_served_jwks(dev_validator):
    token = mint_dev_token(
        "dev-user", "child.identity.read child.health.read", ["mfa"], "council-1", "dev-client", 120
    )
    caller = await dev_validator.authenticate(f"Bearer {token}")
    assert caller.subject == "dev-user"
    assert caller.client_id == "dev-client"
    assert caller.organisation == "council-1"
    assert caller.scopes == frozenset({"child.identity.read", "child.health.read"})
    assert caller.amr == frozenset({"mfa"})


def test_minted_token_shape():
    token = mint_dev_token("u", "s", ["mfa"], None, "c", 60, now=1_000)
    decoded = jwt.decode(token, dev_key(), algorithms=["ES256"])
    assert decoded.header == {"alg": "ES256", "typ": "at+jwt", "kid": dev_key().kid}
    claims = decoded.claims
    assert (claims["iss"], claims["aud"]) == (DEV_ISSUER, DEV_AUDIENCE)
    assert (claims["iat"], claims["nbf"], claims["exp"]) == (1_000, 1_000, 1_060)
    assert "org" not in claims
    assert (
        claims["jti"]
        != jwt.decode(mint_dev_token("u", "s", ["mfa"], now=1_000), dev_key()).claims["jti"]
    )


@pytest.mark.parametrize("amr", [None, []])
async def test_without_amr_the_token_is_refused(dev_validator, amr):
    token = mint_dev_token("dev-user", "child.identity.read", amr)
    assert "amr" not in jwt.decode(token, dev_key(), algorithms=["ES256"]).claims
    with pytest.raises(TokenRejectedError) as info:
        await dev_validator.authenticate(f"Bearer {token}")
    assert info.value.reason == "missing MFA"


async def test_a_token_signed_by_another_key_is_refused(dev_validator, keys):
    impostor = jwk.ECKey.generate_key("P-256", {"kid": dev_key().kid})
    token = mint_dev_token("dev-user", "child.identity.read", ["mfa"], key=impostor)
    with pytest.raises(TokenRejectedError) as info:
        await dev_validator.authenticate(f"Bearer {token}")
    assert info.value.reason == "bad signature"


def test_ttl_must_be_positive():
    with pytest.raises(ValueError, match="ttl_seconds"):
        mint_dev_token("u", "s", ["mfa"], ttl_seconds=0)


async def test_the_development_issuer_is_refused_outside_development(dev_jwks_url):
    settings = dev_auth_settings(dev_jwks_url)
    async with JwksCache(settings) as cache:
        with pytest.raises(ValueError, match="development"):
            TokenValidator(settings, cache)


async def test_the_development_key_is_refused_under_any_issuer_outside_development(dev_jwks_url):
    # A production configuration pointed at the demo JWKS by mistake: anyone can sign with that key.
    clock = FakeClock()
    settings = auth_settings(dev_jwks_url)
    async with JwksCache(settings, clock=clock) as cache:
        validator = TokenValidator(settings, cache, clock=clock)
        with pytest.raises(TokenRejectedError) as info:
            await validator.authenticate(f"Bearer {make_token(dev_key(), clock())}")
        assert info.value.reason == "development key"
