"""Mutual TLS by manifest: a simulated system over TLS that requires a client certificate.

The CA, the server certificate (127.0.0.1, localhost) and the client's are made
for the session by `tests.connectors.certs`; nothing is committed.
"""

from __future__ import annotations

import ssl

import aiohttp
import pytest

from connectors.conformance import run_checks
from connectors.errors import ConnectorConnectionError
from connectors.http import HttpClient
from connectors.manifest import BUILTIN_DIR, ManifestError
from connectors.rest_json import RestJsonConnector
from connectors.simulators import create_council_app
from connectors.simulators.protected import REFUSED, client_certificate_required, require_bearer
from connectors.simulators.runner import serve_simulator
from connectors.simulators.token_endpoint import TOKEN_PATH, TokenIssuer, create_token_app
from connectors.upstream_auth import UpstreamAuth
from tests.connectors.certs import make_pki
from tests.connectors.test_upstream_auth import CLIENT_ID, SECRET, council_manifest, oauth2


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"), "test")


@pytest.fixture(scope="session")
def other_pki(tmp_path_factory):
    """Another CA with its own certificates: trusted by nobody here."""
    return make_pki(tmp_path_factory.mktemp("other-pki"), "other")


@pytest.fixture
async def mtls_council(population, pki):
    context = client_certificate_required(pki.server_cert, pki.server_key, pki.ca)
    async with serve_simulator("council", create_council_app(population), ssl_context=context,
                               shutdown_timeout=0.2) as running:
        yield running


@pytest.fixture
def known(population):
    numbers = [n for n in population.fixtures().values() if population.lookup("council", n)]
    assert numbers
    return numbers


def mtls(pki, *, ca=None, cert=None, key=None):
    return {"type": "mtls", "cert_file": str(cert or pki.client_cert),
            "key_file": str(key or pki.client_key), "ca_file": str(ca or pki.ca)}


async def test_with_the_client_certificate_the_system_answers(mtls_council, pki, known, connect):
    assert mtls_council.url.startswith("https://127.0.0.1:")
    connector = connect(council_manifest(mtls_council.url, mtls(pki)))

    await connector.check()
    facts = await connector.fetch(known[0])

    assert facts is not None
    assert facts.nhs_number == known[0]


async def test_without_a_client_certificate_the_simulator_refuses(mtls_council, pki):
    trusting = ssl.create_default_context(cafile=str(pki.ca))  # trusts the server; no cert
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(mtls_council.url + "/api/health", ssl=trusting) as answer:
                await answer.read()


async def test_without_a_client_certificate_the_connector_raises_a_connection_error(
        mtls_council, pki):
    trusting = ssl.create_default_context(cafile=str(pki.ca))
    client = HttpClient("council", mtls_council.url, timeout_seconds=2.0, max_connections=4,
                        auth=UpstreamAuth(ssl_context=trusting))
    try:
        with pytest.raises(ConnectorConnectionError, match=r"^council: connection failed"):
            await client.get_json("/api/health")
    finally:
        await client.close()
    assert sum(mtls_council.hits.values()) == 0


async def test_a_certificate_from_another_ca_is_refused(mtls_council, pki, other_pki, known,
                                                        connect):
    connector = connect(council_manifest(mtls_council.url, mtls(
        pki, cert=other_pki.client_cert, key=other_pki.client_key)))

    with pytest.raises(ConnectorConnectionError):
        await connector.fetch(known[0])
    assert sum(mtls_council.hits.values()) == 0


async def test_a_wrong_ca_fails(mtls_council, pki, other_pki, known, connect):
    # The client's ca_file does not sign the system's certificate: we refuse the system.
    connector = connect(council_manifest(mtls_council.url, mtls(pki, ca=other_pki.ca)))

    with pytest.raises(ConnectorConnectionError, match="connection failed"):
        await connector.fetch(known[0])


async def test_no_auth_against_the_mtls_system_fails(mtls_council, known, connect):
    connector = connect(council_manifest(mtls_council.url, {"type": "none"}))

    with pytest.raises(ConnectorConnectionError):
        await connector.fetch(known[0])


async def test_oauth2_and_a_client_certificate_together(population, pki, known, tmp_path,
                                                        connect):
    issuer = TokenIssuer({CLIENT_ID: SECRET})
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET, encoding="utf-8")
    context = client_certificate_required(pki.server_cert, pki.server_key, pki.ca)
    app = require_bearer(create_council_app(population), issuer)
    async with (serve_simulator("idp", create_token_app(issuer)) as idp,
                serve_simulator("council", app, ssl_context=context) as system):
        certificate = {"cert_file": str(pki.client_cert), "key_file": str(pki.client_key),
                       "ca_file": str(pki.ca)}
        connector = connect(council_manifest(system.url, oauth2(
            idp.url + TOKEN_PATH, secret_file, client_certificate=certificate)))

        assert await connector.fetch(known[0]) is not None
        assert await connector.fetch(known[1]) is not None

    assert issuer.issued == 1
    assert app[REFUSED] == {}


async def test_the_conformance_kit_passes_the_mtls_system(mtls_council, pki, known, tmp_path):
    text = (BUILTIN_DIR / "council.toml").read_text(encoding="utf-8") + (
        f'\n[auth]\ntype = "mtls"\ncert_file = "{pki.client_cert}"\n'
        f'key_file = "{pki.client_key}"\nca_file = "{pki.ca}"\n')
    path = tmp_path / "mtls-council.toml"
    path.write_text(text, encoding="utf-8")

    results = await run_checks(str(path), mtls_council.url, known[:2], None)

    assert {r.name: r.reason for r in results if not r.passed} == {}


# -- the manifest's files, checked when the connector is built --------------------------------

def test_a_missing_certificate_is_one_line_naming_the_file(pki, tmp_path):
    missing = tmp_path / "client.pem"
    manifest = council_manifest("https://127.0.0.1:1", mtls(pki, cert=missing))

    with pytest.raises(ManifestError) as failed:
        RestJsonConnector(manifest)

    assert str(failed.value) == f"connector council: auth.cert_file: {missing}: no such file"


def test_a_key_that_does_not_match_the_certificate_is_refused(pki, other_pki):
    manifest = council_manifest("https://127.0.0.1:1", mtls(pki, key=other_pki.client_key))

    with pytest.raises(ManifestError) as failed:
        RestJsonConnector(manifest)

    assert str(failed.value) == (
        f"connector council: auth.cert_file, auth.key_file: {pki.client_cert}, "
        f"{other_pki.client_key}: not a PEM certificate and its unencrypted private key")


def test_a_ca_file_that_is_not_pem_is_refused(pki, tmp_path):
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate", encoding="utf-8")
    manifest = council_manifest("https://127.0.0.1:1", mtls(pki, ca=garbage))

    with pytest.raises(ManifestError, match=f"auth.ca_file: {garbage}: not a PEM CA certificate$"):
        RestJsonConnector(manifest)


def test_a_certificate_in_the_combined_form_names_its_key(pki, tmp_path):
    missing = tmp_path / "client-key.pem"
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET, encoding="utf-8")
    manifest = council_manifest("https://127.0.0.1:1", oauth2(
        "https://idp.example/token", secret_file, client_certificate={
            "cert_file": str(pki.client_cert), "key_file": str(missing)}))

    with pytest.raises(ManifestError, match=(
            f"^connector council: auth.client_certificate.key_file: {missing}: no such file$")):
        RestJsonConnector(manifest)
