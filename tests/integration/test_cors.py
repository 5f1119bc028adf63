"""Browsers on other origins: preflights, allowed and refused origins, no credentials."""

from __future__ import annotations

import pytest

from gateway.web.demo import demo_settings
from tests.integration.harness import running_gateway

DASHBOARD = "https://dashboard.council.example"
PREFLIGHT = {"Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization, content-type, dpop"}


@pytest.fixture
async def cors_gateway(sims, jwks, signing_key):
    async with running_gateway(sims, jwks, signing_key,
                               http={"cors_origins": [DASHBOARD], "cors_max_age_seconds": 300},
                               ) as gateway:
        yield gateway


async def preflight(gateway, origin):
    return await gateway.client.options("/graphql", headers={"Origin": origin, **PREFLIGHT})


async def test_a_preflight_from_an_allowed_origin(cors_gateway):
    response = await preflight(cors_gateway, DASHBOARD)
    assert response.status_code == 200
    headers = response.headers
    assert headers["access-control-allow-origin"] == DASHBOARD
    assert set(headers["access-control-allow-methods"].split(", ")) == {"GET", "POST", "OPTIONS"}
    allowed = {h.lower() for h in headers["access-control-allow-headers"].split(", ")}
    assert {"authorization", "content-type", "dpop"} <= allowed
    assert headers["access-control-max-age"] == "300"  # the browser caches the answer
    assert "origin" in headers["vary"].lower()
    assert "access-control-allow-credentials" not in headers


@pytest.mark.parametrize("origin", [
    "https://evil.example", "http://dashboard.council.example",  # scheme is part of it
    "https://dashboard.council.example.evil.example", "null", "http://localhost:3000",
])
async def test_a_preflight_from_any_other_origin_is_refused(cors_gateway, origin):
    response = await preflight(cors_gateway, origin)
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


async def test_a_preflight_asking_for_another_header_is_refused(cors_gateway):
    response = await cors_gateway.client.options("/graphql", headers={
        "Origin": DASHBOARD, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "cookie"})
    assert response.status_code == 400


async def test_an_allowed_origin_posts_with_authorization(cors_gateway):
    response = await cors_gateway.post({"query": "{ __typename }"},
                                       headers={"Origin": DASHBOARD})
    assert response.json() == {"data": {"__typename": "Query"}}
    assert response.headers["access-control-allow-origin"] == DASHBOARD
    exposed = response.headers["access-control-expose-headers"]
    assert {"WWW-Authenticate", "Retry-After", "X-Request-Id"} <= set(exposed.split(", "))
    assert "access-control-allow-credentials" not in response.headers


async def test_a_refused_token_is_readable_by_the_allowed_page(cors_gateway):
    response = await cors_gateway.post({"query": "{ __typename }"}, token="nope",
                                       headers={"Origin": DASHBOARD})
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == DASHBOARD
    assert "WWW-Authenticate" in response.headers["access-control-expose-headers"]


async def test_a_disallowed_origins_post_gets_no_allow_origin(cors_gateway):
    response = await cors_gateway.post({"query": "{ __typename }"},
                                       headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers


async def test_no_origin_is_allowed_by_default(gateway):
    assert (await preflight(gateway, DASHBOARD)).status_code == 405  # no CORS layer at all
    response = await gateway.post({"query": "{ __typename }"}, headers={"Origin": DASHBOARD})
    assert not any(name.startswith("access-control-") for name in response.headers)


@pytest.mark.parametrize(("origin", "allowed"), [
    ("http://localhost:5173", True), ("http://127.0.0.1:3000", True), ("http://[::1]:8080", True),
    ("http://localhost", True), ("https://localhost:5173", False),
    ("http://localhost.evil.example", False), ("http://127.0.0.1.evil.example:80", False),
    ("http://localhost:5173/path", False), (DASHBOARD, False),
])
async def test_loopback_origins_in_development(sims, jwks, signing_key, origin, allowed):
    async with running_gateway(sims, jwks, signing_key, mode="development",
                               http={"cors_allow_loopback": True}) as gateway:
        response = await preflight(gateway, origin)
    assert (response.status_code == 200) is allowed
    assert (response.headers.get("access-control-allow-origin") == origin) is allowed


def test_the_demo_allows_loopback_origins():
    settings = demo_settings({"gp": "http://127.0.0.1:1"}, "http://127.0.0.1:2/jwks", None)
    assert settings.http.cors_allow_loopback
