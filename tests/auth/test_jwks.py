"""JwksCache against a live JWKS server: caching, rate-limited refresh, rotation, outages."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket

import pytest

from gateway.auth import JwksCache, JwksUnavailableError, TokenRejectedError, TokenValidator
from gateway.auth.jwks import MAX_JWKS_BYTES
from tests.auth.helpers import auth_settings, make_token


async def test_keys_are_fetched_once_and_served_from_the_cache(jwks, server, keys):
    assert jwks.status.ready is False
    first = await jwks.key_for("es-1")
    assert first is not None
    assert first.thumbprint() == keys.es256.thumbprint()
    assert not first.is_private
    for _ in range(20):
        await jwks.key_for("rsa-1")
    assert server.fetches == 1
    status = jwks.status
    assert status.ready
    assert status.key_count == 3  # the P-521 key fits no allowed algorithm
    assert not status.stale
    assert status.last_error is None
    assert jwks.key_set is not None
    assert {key.kid for key in jwks.key_set} == {"es-1", "rsa-1", "ed-1"}


async def test_the_cache_expires_after_jwks_cache_seconds(jwks, server, clock):
    await jwks.key_for("es-1")
    clock.advance(599)
    await jwks.key_for("es-1")
    assert server.fetches == 1
    clock.advance(1)
    await jwks.key_for("es-1")
    assert server.fetches == 2


async def test_a_spray_of_random_kids_fetches_at_most_once_per_interval(
    validator, server, keys, clock
):
    server.delay = 0.05  # keep the first fetch in flight while all 50 requests arrive

    async def spray() -> None:
        tokens = [
            make_token(keys.es256, clock(), header={"kid": secrets.token_hex(8)}) for _ in range(50)
        ]
        results = await asyncio.gather(
            *(validator.authenticate(f"Bearer {token}") for token in tokens), return_exceptions=True
        )
        assert all(isinstance(r, TokenRejectedError) and r.reason == "unknown kid" for r in results)

    await spray()
    assert server.fetches == 1  # the initial fetch, shared; the misses are within the interval
    await spray()
    clock.advance(29.9)
    await spray()
    assert server.fetches == 1
    clock.advance(0.1)
    await spray()
    assert server.fetches == 2
    await spray()
    assert server.fetches == 2


async def test_concurrent_misses_after_the_interval_share_one_refresh(jwks, server, clock):
    await jwks.key_for("es-1")
    clock.advance(30)
    server.delay = 0.05
    found = await asyncio.gather(*(jwks.key_for(f"unknown-{n}") for n in range(50)))
    assert found == [None] * 50
    assert server.fetches == 2


async def test_rotation_a_new_kid_is_accepted_after_the_refresh_interval(
    validator, server, keys, clock
):
    await validator.authenticate(f"Bearer {make_token(keys.es256, clock())}")
    server.publish(keys.es256, keys.es256_next)
    new_token = make_token(keys.es256_next, clock())
    clock.advance(5)
    with pytest.raises(TokenRejectedError) as info:
        await validator.authenticate(f"Bearer {new_token}")
    assert info.value.reason == "unknown kid"  # the refresh interval has not passed
    clock.advance(25)
    assert (await validator.authenticate(f"Bearer {new_token}")).subject == "user-7"
    assert server.fetches == 2


async def test_rotation_a_withdrawn_key_is_refused_once_the_cache_expires(
    validator, server, keys, clock
):
    await validator.authenticate(f"Bearer {make_token(keys.es256, clock())}")
    server.publish(keys.es256_next)
    clock.advance(600)
    with pytest.raises(TokenRejectedError) as info:
        await validator.authenticate(f"Bearer {make_token(keys.es256, clock())}")
    assert info.value.reason == "unknown kid"


async def test_jwks_down_at_start_is_unavailable_not_unauthenticated(
    validator, jwks, server, keys, clock
):
    server.mode = "down"
    token = make_token(keys.es256, clock())
    with pytest.raises(JwksUnavailableError) as info:
        await validator.authenticate(f"Bearer {token}")
    assert info.value.http_status == 503
    assert info.value.extensions == {"code": "UPSTREAM_UNAVAILABLE"}
    assert not isinstance(info.value, TokenRejectedError)
    status = await jwks.check()
    assert not status.ready
    assert status.last_error == "HTTP status 503"
    # Retried no more than once per interval, even while nothing works.
    with pytest.raises(JwksUnavailableError):
        await validator.authenticate(f"Bearer {token}")
    assert server.fetches == 1
    server.mode = "ok"
    clock.advance(30)
    assert (
        await validator.authenticate(f"Bearer {make_token(keys.es256, clock())}")
    ).subject == "user-7"
    assert (await jwks.check()).ready


async def test_jwks_unreachable_at_start_is_unavailable(keys, clock):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = auth_settings(f"http://127.0.0.1:{port}/jwks.json")
    async with JwksCache(settings, clock=clock) as jwks:
        validator = TokenValidator(settings, jwks, clock=clock)
        with pytest.raises(JwksUnavailableError):
            await validator.authenticate(f"Bearer {make_token(keys.es256, clock())}")
        assert jwks.status.last_error == "ClientConnectorError"


async def test_jwks_down_later_keeps_serving_the_last_good_keys(
    validator, jwks, server, keys, clock
):
    await validator.authenticate(f"Bearer {make_token(keys.es256, clock())}")
    server.mode = "down"
    clock.advance(601)
    caller = await validator.authenticate(f"Bearer {make_token(keys.rs256, clock())}")
    assert caller.subject == "user-7"
    assert server.fetches == 2
    status = jwks.status
    assert status.ready
    assert status.stale
    assert status.last_error == "HTTP status 503"
    for _ in range(10):
        await validator.authenticate(f"Bearer {make_token(keys.ed25519, clock())}")
    assert server.fetches == 2  # no retry storm while it is down
    server.mode = "ok"
    clock.advance(30)
    status = await jwks.check()
    assert (status.stale, status.last_error, server.fetches) == (False, None, 3)


@pytest.mark.parametrize(
    ("mode", "body", "error"),
    [
        ("redirect", b"", "HTTP status 302"),
        ("body", b"<html>not json</html>", "the response is not JSON"),
        ("body", b'{"keys": {"kty": "EC"}}', "the document is not a JWK Set"),
        ("body", b"[]", "the document is not a JWK Set"),
        ("body", b'{"keys": []}' + b" " * MAX_JWKS_BYTES, "the response is too large"),
        ("chunked", b'{"keys": []}' + b" " * MAX_JWKS_BYTES, "the response is too large"),
    ],
)
async def test_bad_responses_count_as_failures(jwks, server, mode, body, error):
    server.mode, server.body = mode, body
    with pytest.raises(JwksUnavailableError):
        await jwks.key_for("es-1")
    assert jwks.status.last_error == error


async def test_a_hanging_jwks_times_out(server, clock):
    server.mode = "hang"
    settings = auth_settings(server.url, jwks_timeout_seconds=0.2)
    async with JwksCache(settings, clock=clock) as jwks:
        with pytest.raises(JwksUnavailableError):
            await jwks.key_for("es-1")
        assert jwks.status.last_error == "TimeoutError"


async def test_close_stops_a_fetch_in_flight_and_refuses_further_use(server, settings, clock):
    server.mode = "hang"
    jwks = JwksCache(settings, clock=clock)
    waiter = asyncio.create_task(jwks.key_for("es-1"))
    await server.requested.wait()
    await jwks.close()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert jwks.closed
    with pytest.raises(RuntimeError):
        await jwks.key_for("es-1")
    with pytest.raises(RuntimeError):
        await jwks.check()
    await jwks.close()  # idempotent


async def test_a_caller_that_gives_up_does_not_cancel_the_shared_fetch(jwks, server):
    server.delay = 0.1
    impatient = asyncio.create_task(jwks.key_for("es-1"))
    patient = asyncio.create_task(jwks.key_for("rsa-1"))
    await asyncio.sleep(0.02)
    impatient.cancel()
    assert (await patient) is not None
    assert server.fetches == 1


async def test_a_jwks_with_private_keys_drops_them(validator, server, keys, clock):
    server.keys = [dict(keys.es256.as_dict(private=True)), dict(keys.rs256.as_dict(private=False))]
    with pytest.raises(TokenRejectedError) as info:
        await validator.authenticate(f"Bearer {make_token(keys.es256, clock())}")
    assert info.value.reason == "unknown kid"
    assert (
        await validator.authenticate(f"Bearer {make_token(keys.rs256, clock())}")
    ).subject == "user-7"


async def test_a_chunked_response_within_the_limit_is_read(jwks, server, keys):
    server.mode = "chunked"
    server.body = json.dumps(server.document()).encode() + b" " * (MAX_JWKS_BYTES - 50_000)
    assert (await jwks.key_for("es-1")) is not None


async def test_a_stale_key_set_is_trusted_for_a_bounded_time_only(validator, jwks, server, keys,
                                                                  clock):
    """While the issuer cannot be reached, its last keys serve for jwks_max_stale_seconds past
    the cache period (1,800 s by default), then nothing is accepted and readiness fails."""
    await validator.authenticate(f"Bearer {make_token(keys.es256, clock())}")
    server.mode = "down"
    clock.advance(600 + 1_799)
    assert (await validator.authenticate(f"Bearer {make_token(keys.es256, clock())}")).subject
    status = await jwks.check()
    assert (status.ready, status.stale, status.expired) == (True, True, False)
    clock.advance(1)
    with pytest.raises(JwksUnavailableError):
        await validator.authenticate(f"Bearer {make_token(keys.es256, clock())}")
    status = await jwks.check()
    assert (status.ready, status.expired) == (False, True)
    # The issuer answers again: the next refresh restores service.
    server.mode = "ok"
    clock.advance(30)
    assert (await validator.authenticate(f"Bearer {make_token(keys.es256, clock())}")).subject
    assert (await jwks.check()).ready


async def test_the_staleness_bound_is_configurable(keys, clock, server):
    settings = auth_settings(server.url, jwks_max_stale_seconds=0)
    async with JwksCache(settings, clock=clock) as jwks:
        validator = TokenValidator(settings, jwks, clock=clock)
        await validator.authenticate(f"Bearer {make_token(keys.es256, clock())}")
        server.mode = "down"
        clock.advance(600)
        with pytest.raises(JwksUnavailableError):
            await validator.authenticate(f"Bearer {make_token(keys.es256, clock())}")
