"""RFC 9449 DPoP through the whole gateway, and the replay cache on real Redis."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from gateway.auth import JwksCache, TokenRejectedError, TokenValidator
from gateway.auth.devissuer import dev_key
from gateway.auth.dpop import DpopRequest, ProofReplayCache, make_proof
from tests.auth.helpers import auth_settings, make_token
from tests.integration.harness import FIND_QUERY, running_gateway
from tests.integration.test_socket_and_cli import CLI, ROOT, free_port

URL = "http://gateway.test/graphql"
UNAUTHENTICATED = "A valid multi-factor access token is required."


@pytest.fixture(scope="module")
def client_key() -> ECKey:
    return ECKey.generate_key("P-256", private=True)


def bound(gateway, key: ECKey, **claims) -> str:
    return gateway.token(cnf={"jkt": key.thumbprint()}, **claims)


async def find(gateway, headers: dict[str, str]):
    body = {"query": FIND_QUERY, "variables": {"s": {"nhsNumber": "9434765919"}}}
    return await gateway.client.post("/graphql", json=body, headers=headers)


def refused(response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["errors"][0]["message"] == UNAUTHENTICATED
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="contactpoint", DPoP algs="ES256 RS256')


async def test_a_valid_dpop_request_is_served(gateway, client_key):
    token = bound(gateway, client_key)
    proof = make_proof(client_key, "POST", URL, token)
    response = await find(gateway, {"Authorization": f"DPoP {token}", "DPoP": proof})
    assert response.status_code == 200, response.text
    assert "errors" not in response.json()


async def test_a_replayed_proof_and_a_stolen_token_are_refused(gateway, client_key):
    token = bound(gateway, client_key)
    proof = make_proof(client_key, "POST", URL, token)
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
    assert (await find(gateway, headers)).status_code == 200
    replay = await find(gateway, headers)
    refused(replay)
    assert 'error="invalid_dpop_proof"' in replay.headers["www-authenticate"]
    thief = ECKey.generate_key("P-256", private=True)
    stolen = make_proof(thief, "POST", URL, token)
    refused(await find(gateway, {"Authorization": f"DPoP {token}", "DPoP": stolen}))


async def test_a_bound_token_sent_as_bearer_is_refused(gateway, client_key):
    token = bound(gateway, client_key)
    response = await find(gateway, {"Authorization": f"Bearer {token}"})
    refused(response)
    assert token not in response.text
    assert token.split(".")[1] not in response.headers["www-authenticate"]


@pytest.mark.parametrize(("method", "url", "age"),
                         [("GET", URL, 0), ("POST", "https://gateway.test/graphql", 0),
                          ("POST", URL, 120)])
async def test_a_proof_for_another_request_or_time_is_refused(
        gateway, client_key, method, url, age):
    token = bound(gateway, client_key)
    proof = make_proof(client_key, method, url, token, now=time.time() - age)
    refused(await find(gateway, {"Authorization": f"DPoP {token}", "DPoP": proof}))


async def test_a_proof_for_another_token_is_refused(gateway, client_key):
    token, other = bound(gateway, client_key), bound(gateway, client_key, jti="other")
    proof = make_proof(client_key, "POST", URL, other)
    refused(await find(gateway, {"Authorization": f"DPoP {token}", "DPoP": proof}))


async def test_a_token_without_jti_is_refused(gateway):
    from tests.auth.helpers import OMIT

    refused(await find(gateway, {"Authorization": f"Bearer {gateway.token(jti=OMIT)}"}))


async def test_dpop_can_be_required_per_client(sims, jwks, signing_key, client_key):
    auth = {"dpop_required_clients": ["client-a"]}
    async with running_gateway(sims, jwks, signing_key, auth=auth) as gateway:
        refused(await find(gateway, {"Authorization": f"Bearer {gateway.token()}"}))
        other = gateway.token(client_id="client-b")
        assert (await find(gateway, {"Authorization": f"Bearer {other}"})).status_code == 200
        token = bound(gateway, client_key)
        proof = make_proof(client_key, "POST", URL, token)
        ok = await find(gateway, {"Authorization": f"DPoP {token}", "DPoP": proof})
        assert ok.status_code == 200, ok.text


async def test_a_proof_is_refused_by_a_second_process_sharing_redis(
        jwks, signing_key, redis_client, client_key):
    """Two validators (as in two gateway processes) with one Redis: a proof is used once."""
    settings = auth_settings(jwks.url)
    prefix = f"t{uuid.uuid4().hex[:12]}:"
    token = make_token(signing_key, time.time(), claims={"cnf": {"jkt": client_key.thumbprint()}})
    request = DpopRequest((make_proof(client_key, "POST", URL, token),), "POST", URL)
    async with JwksCache(settings) as first_keys, JwksCache(settings) as second_keys:
        first = TokenValidator(settings, first_keys,
                               replay=ProofReplayCache(redis_client, prefix))
        second = TokenValidator(settings, second_keys,
                                replay=ProofReplayCache(redis_client, prefix))
        assert (await first.authenticate(f"DPoP {token}", request)).subject == "user-7"
        with pytest.raises(TokenRejectedError) as caught:
            await second.authenticate(f"DPoP {token}", request)
    assert caught.value.reason == "proof replayed"
    keys = [key async for key in redis_client.scan_iter(match=f"{prefix}dpop:*")]
    assert len(keys) == 1
    assert 0 < await redis_client.ttl(keys[0]) <= 121
    await redis_client.delete(*keys)


async def test_the_replay_cache_falls_back_to_the_process_when_redis_is_down(client_key):
    import redis.asyncio as aioredis

    down = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=0.2,
                                   socket_connect_timeout=0.2)
    try:
        cache = ProofReplayCache(down, "t:")
        assert await cache.first_use("jkt", "p-1", 60)
        assert not await cache.first_use("jkt", "p-1", 60)
    finally:
        await down.aclose()


def test_dev_token_with_a_dpop_key_binds_the_token(tmp_path):
    path = tmp_path / "client.pem"
    result = subprocess.run(
        [*CLI, "dev-token", "--sub", "p-1", "--scope", "child.identity.read", "--amr", "mfa",
         "--dpop-key", str(path)], capture_output=True, text=True, timeout=30, check=True)
    assert path.stat().st_mode & 0o777 == 0o600
    key = ECKey.import_key(path.read_bytes())
    claims = jwt.decode(result.stdout.strip(), dev_key(), algorithms=["ES256"]).claims
    assert claims["cnf"] == {"jkt": key.thumbprint()}
    again = subprocess.run(
        [*CLI, "dev-token", "--sub", "p-1", "--scope", "s", "--dpop-key", str(path)],
        capture_output=True, text=True, timeout=30, check=True)
    assert jwt.decode(again.stdout.strip(), dev_key(), algorithms=["ES256"]).claims["cnf"] == \
        claims["cnf"]


def test_the_demo_client_uses_dpop_over_a_real_socket(tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    demo = subprocess.Popen([*CLI, "demo", "--port", str(port), "--children", "300"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=tmp_path, env=env)
    try:
        assert demo.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            if line.startswith("Ctrl-C") or not line:
                break
        result = subprocess.run(
            [sys.executable, "-m", "gateway.web.democlient", "--url",
             f"http://127.0.0.1:{port}/graphql", "--children", "300",
             "--dpop-key", str(Path(tmp_path) / "demo.pem")],
            capture_output=True, text=True, timeout=60, env=env, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert '"findChildren"' in result.stdout
        assert '"errors"' not in result.stdout
    finally:
        demo.terminate()
        demo.wait(timeout=15)
        if demo.stdout is not None:
            demo.stdout.close()


async def test_two_gateways_on_one_redis_refuse_a_proof_replayed_to_the_other(
        sims, jwks, signing_key, client_key):
    """The runtime gives the validator the cache's Redis: a proof is used once, anywhere."""
    prefix = f"t{secrets.token_hex(6)}:"
    async with (running_gateway(sims, jwks, signing_key, cache={"key_prefix": prefix}) as one,
                running_gateway(sims, jwks, signing_key, cache={"key_prefix": prefix}) as two):
        token = bound(one, client_key)
        headers = {"Authorization": f"DPoP {token}",
                   "DPoP": make_proof(client_key, "POST", URL, token)}
        assert (await find(one, headers)).status_code == 200
        refused(await find(two, headers))
