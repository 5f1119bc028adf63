"""The gateway reaching a protected council system: OAuth2 client credentials, end to end.

The council simulator requires bearer tokens of a simulated token endpoint; the
gateway's configuration points at a manifest file whose `[auth]` names the
client secret's file. A wrong secret makes the council unavailable (the child is
still answered from the other systems) and the secret appears nowhere.
"""

from __future__ import annotations

import logging

import pytest

from connectors.manifest import BUILTIN_DIR
from connectors.simulators import create_council_app
from connectors.simulators.protected import REFUSED, require_bearer
from connectors.simulators.runner import serve_simulator
from connectors.simulators.token_endpoint import TOKEN_PATH, TokenIssuer, create_token_app
from tests.integration.harness import SYSTEMS, running_gateway
from tests.integration.support import sources_of

SECRET = "integration-client-secret-never-shown"
CLIENT_ID = "contactpoint-gateway"


@pytest.fixture
async def protected(population):
    issuer = TokenIssuer({CLIENT_ID: SECRET})
    council = require_bearer(create_council_app(population), issuer)
    async with (serve_simulator("idp", create_token_app(issuer), shutdown_timeout=0.2) as idp,
                serve_simulator("council", council, shutdown_timeout=0.2) as system):
        yield issuer, idp, system


def configured(sims, protected, tmp_path, secret):
    _, idp, system = protected
    secret_file = tmp_path / "council-secret"
    secret_file.write_text(secret + "\n", encoding="utf-8")
    manifest = tmp_path / "council-protected.toml"
    manifest.write_text((BUILTIN_DIR / "council.toml").read_text(encoding="utf-8") + (
        f'\n[auth]\ntype = "oauth2_client_credentials"\ntoken_url = "{idp.url}{TOKEN_PATH}"\n'
        f'client_id = "{CLIENT_ID}"\nclient_secret_file = "{secret_file}"\n'), encoding="utf-8")
    urls = sims.urls()
    return [{"name": name, "manifest": str(manifest) if name == "council" else name,
             "base_url": system.url if name == "council" else urls[name],
             "timeout_seconds": 1.0} for name in SYSTEMS]


async def test_the_gateway_fetches_one_token_for_many_lookups(sims, jwks, signing_key,
                                                              protected, tmp_path):
    issuer, _, system = protected
    connectors = configured(sims, protected, tmp_path, SECRET)
    async with running_gateway(sims, jwks, signing_key, connectors=connectors) as gateway:
        for key in ("ordinary", "multi_service", "shielded"):
            body = await gateway.child(key)
            assert "errors" not in body, body
            assert sources_of(body["data"]["child"])["council"][0] == "ok"

    assert issuer.issued == 1
    assert system.app[REFUSED] == {}


async def test_a_wrong_secret_makes_the_council_unavailable_and_is_never_shown(
        sims, jwks, signing_key, protected, tmp_path, caplog):
    issuer, _, system = protected
    caplog.set_level(logging.DEBUG)
    connectors = configured(sims, protected, tmp_path, "a-wrong-secret-never-shown")
    async with running_gateway(sims, jwks, signing_key, connectors=connectors) as gateway:
        body = await gateway.child("multi_service")

    served = body["data"]["child"]
    assert sources_of(served)["council"] == ("unavailable", False)
    assert sources_of(served)["gp"] == ("ok", False)
    assert issuer.issued == 0
    assert issuer.refused >= 1
    assert sum(system.hits.values()) == 0
    assert "a-wrong-secret-never-shown" not in caplog.text
    assert "a-wrong-secret-never-shown" not in str(body)
