"""Upstream auth by manifest: OAuth2 client credentials and a static header, against real servers.

The token endpoint (`POST /oauth2/token`) and the council system that requires
its bearer tokens (or an API key) are real aiohttp servers on loopback; the
connector is the manifest-driven `rest_json` one. Counting the endpoint's issued
tokens shows what the connector fetched: one per lifetime, one per refusal.
"""

from __future__ import annotations

import asyncio
import logging
import re
import tomllib
from pathlib import Path

import pytest
from aiohttp import web
from pydantic import SecretStr

from connectors.conformance import run_checks
from connectors.errors import (
    ConnectorConnectionError,
    ConnectorError,
    ConnectorResponseError,
    ConnectorTimeoutError,
)
from connectors.manifest import BUILTIN_DIR, ManifestError, load_manifest, manifest_from_dict
from connectors.rest_json import RestJsonConnector
from connectors.simulators import create_council_app
from connectors.simulators.protected import REFUSED, require_bearer, require_header
from connectors.simulators.runner import serve_simulator
from connectors.simulators.token_endpoint import TOKEN_PATH, TokenIssuer, create_token_app
from connectors.upstream_auth import ClientCredentialsTokens, ConnectorAuthError, StaticHeader

SECRET = "s3cr3t-client-secret-do-not-print"
API_KEY = "k3y-api-key-do-not-print"
CLIENT_ID = "contactpoint-gateway"


def council_manifest(url, auth, *, timeout=2.0):
    data = load_manifest("council").model_dump(mode="json", exclude_none=True)
    data.update(base_url=url, timeout_seconds=timeout, cache_ttl_seconds=0, auth=auth)
    return manifest_from_dict(data, "protected.toml")


def oauth2(token_url, secret_file, **more):
    return {"type": "oauth2_client_credentials", "token_url": token_url, "client_id": CLIENT_ID,
            "client_secret_file": str(secret_file), **more}


@pytest.fixture
def secret_file(tmp_path):
    path = tmp_path / "client-secret"
    path.write_text(SECRET + "\n", encoding="utf-8")
    return path


@pytest.fixture
def issuer():
    return TokenIssuer({CLIENT_ID: SECRET}, expires_in=300)


@pytest.fixture
async def idp(issuer):
    async with serve_simulator("idp", create_token_app(issuer), shutdown_timeout=0.2) as running:
        yield running


@pytest.fixture
async def protected(population, issuer):
    app = require_bearer(create_council_app(population), issuer)
    async with serve_simulator("council", app, shutdown_timeout=0.2) as running:
        yield running


@pytest.fixture
def known(population):
    fixtures = population.fixtures()
    numbers = [n for n in fixtures.values() if population.lookup("council", n)]
    assert numbers
    return numbers


async def test_client_credentials_against_the_token_endpoint(idp, protected, issuer, known,
                                                             secret_file, connect):
    connector = connect(council_manifest(protected.url,
                                         oauth2(idp.url + TOKEN_PATH, secret_file)))

    facts = await connector.fetch(known[0])

    assert facts is not None
    assert facts.nhs_number == known[0]
    assert issuer.issued == 1
    assert protected.app[REFUSED] == {}


async def test_without_a_token_the_system_refuses(protected, known, connect):
    connector = connect(council_manifest(protected.url, {"type": "none"}))

    with pytest.raises(ConnectorResponseError) as refused:
        await connector.fetch(known[0])

    assert refused.value.status == 401
    assert protected.app[REFUSED]["missing"] == 1


async def test_the_token_is_cached(idp, protected, issuer, known, secret_file, connect):
    connector = connect(council_manifest(protected.url,
                                         oauth2(idp.url + TOKEN_PATH, secret_file)))

    for nhs in known:
        await connector.fetch(nhs)
    await asyncio.gather(*(connector.fetch(known[i % len(known)]) for i in range(40)))

    assert issuer.issued == 1


async def test_client_secret_post_and_scope_and_audience(idp, protected, issuer, known,
                                                         secret_file, connect):
    auth = oauth2(idp.url + TOKEN_PATH, secret_file, client_auth="client_secret_post",
                  scope="children.read", audience="https://council.example")
    connector = connect(council_manifest(protected.url, auth))

    assert await connector.fetch(known[0]) is not None
    assert issuer.issued == 1


async def test_a_token_expiring_mid_load_is_renewed_once(idp, protected, issuer, known,
                                                         secret_file, connect):
    issuer.expires_in = 2
    connector = connect(council_manifest(
        protected.url, oauth2(idp.url + TOKEN_PATH, secret_file, renew_before_seconds=1)))
    await connector.fetch(known[0])
    assert issuer.issued == 1
    served = 0

    async def worker(index):
        nonlocal served
        # Until the renewal has happened, then one more round: load across the expiry.
        rounds_after = 0
        while rounds_after < 2:
            await connector.fetch(known[index % len(known)])
            served += 1
            rounds_after += issuer.issued >= 2

    async with asyncio.timeout(10):
        await asyncio.gather(*(worker(i) for i in range(50)))

    # Renewed before it expired (1 s early, of 2): one new token, nothing ever refused.
    assert issuer.issued == 2
    assert protected.app[REFUSED] == {}
    assert served >= 100


async def test_concurrent_requests_after_expiry_fetch_one_token(idp, issuer, secret_file):
    now = [1000.0]
    spec = council_manifest("http://127.0.0.1:1", oauth2(
        idp.url + TOKEN_PATH, secret_file, renew_before_seconds=30)).auth
    tokens = ClientCredentialsTokens("council", spec, _secret(), timeout_seconds=2.0,
                                     clock=lambda: now[0])
    try:
        first = await tokens.token()
        now[0] += 300 - 30 - 0.001  # still usable
        assert (await tokens.token()).get_secret_value() == first.get_secret_value()
        now[0] += 0.002  # now due for renewal
        renewed = await asyncio.gather(*(tokens.token() for _ in range(50)))
    finally:
        await tokens.close()

    assert {value.get_secret_value() for value in renewed} != {first.get_secret_value()}
    assert len({value.get_secret_value() for value in renewed}) == 1
    assert issuer.issued == 2
    assert tokens.fetches == 2


def _secret():
    return SecretStr(SECRET)


async def test_a_401_from_the_system_forces_one_refresh(idp, protected, issuer, known,
                                                        secret_file, connect):
    connector = connect(council_manifest(protected.url,
                                         oauth2(idp.url + TOKEN_PATH, secret_file)))
    await connector.fetch(known[0])
    issuer.revoke_all()  # the system no longer accepts the cached token

    await asyncio.gather(*(connector.fetch(known[i % len(known)]) for i in range(30)))

    assert issuer.issued == 2
    assert 1 <= protected.app[REFUSED]["invalid"] <= 30


async def test_a_system_refusing_every_token_is_retried_once_not_in_a_loop(
        idp, population, issuer, known, secret_file, connect):
    other = TokenIssuer({CLIENT_ID: SECRET})  # the system trusts another issuer
    app = require_bearer(create_council_app(population), other)
    async with serve_simulator("council", app, shutdown_timeout=0.2) as system:
        connector = connect(council_manifest(system.url,
                                             oauth2(idp.url + TOKEN_PATH, secret_file)))
        with pytest.raises(ConnectorResponseError) as refused:
            await connector.fetch(known[0])

    assert refused.value.status == 401
    assert app[REFUSED]["invalid"] == 2  # the request and its one retry
    assert issuer.issued == 2  # the first token and the one forced refresh


async def test_a_wrong_secret_makes_the_system_unavailable_naming_no_secret(
        idp, protected, issuer, known, tmp_path, connect, caplog):
    wrong = tmp_path / "wrong-secret"
    wrong.write_text("not-the-secret-either", encoding="utf-8")
    connector = connect(council_manifest(protected.url, oauth2(idp.url + TOKEN_PATH, wrong)))
    caplog.set_level(logging.DEBUG)

    with pytest.raises(ConnectorError) as failed:
        await connector.fetch(known[0])

    assert isinstance(failed.value, ConnectorAuthError)
    assert str(failed.value) == "council: token endpoint refused the client (invalid_client)"
    assert failed.value.__cause__ is None
    assert failed.value.__suppress_context__  # the endpoint's refusal is not chained
    assert "not-the-secret-either" not in caplog.text
    assert issuer.refused == 1
    assert issuer.issued == 0
    assert sum(protected.hits.values()) == 0  # the system was never asked


async def test_an_unreachable_token_endpoint_is_a_connection_error(protected, secret_file,
                                                                   known, connect):
    connector = connect(council_manifest(protected.url,
                                         oauth2("http://127.0.0.1:9/oauth2/token", secret_file)))

    with pytest.raises(ConnectorConnectionError, match="token endpoint: connection failed"):
        await connector.fetch(known[0])


async def test_a_token_endpoint_answering_garbage_is_an_auth_error(protected, population,
                                                                   secret_file, known, connect):
    # The protected council is no token endpoint: its 404 page is not a token.
    connector = connect(council_manifest(protected.url, oauth2(protected.url + "/nowhere",
                                                               secret_file)))

    with pytest.raises(ConnectorAuthError, match="token endpoint"):
        await connector.fetch(known[0])


# -- a static header from a file --------------------------------------------------------------

@pytest.fixture
async def keyed(population):
    app = require_header(create_council_app(population), "X-Api-Key", API_KEY)
    async with serve_simulator("council", app, shutdown_timeout=0.2) as running:
        yield running


async def test_a_static_header_from_a_file(keyed, known, tmp_path, connect):
    key_file = tmp_path / "api-key"
    key_file.write_text(API_KEY + "\n", encoding="utf-8")
    connector = connect(council_manifest(keyed.url, {
        "type": "header", "name": "X-Api-Key", "value_file": str(key_file)}))

    assert await connector.fetch(known[0]) is not None
    await connector.check()
    assert keyed.app[REFUSED] == {}


async def test_a_wrong_static_header_is_refused_once_without_a_retry(keyed, known, tmp_path,
                                                                     connect):
    key_file = tmp_path / "api-key"
    key_file.write_text("wrong-key", encoding="utf-8")
    connector = connect(council_manifest(keyed.url, {
        "type": "header", "name": "X-Api-Key", "value_file": str(key_file)}))

    with pytest.raises(ConnectorResponseError) as refused:
        await connector.fetch(known[0])

    assert refused.value.status == 401
    assert "wrong-key" not in str(refused.value)
    assert keyed.app[REFUSED]["invalid"] == 1


# -- the manifest: paths only, files read when the connector is built -------------------------

def test_a_missing_secret_file_is_one_line_naming_the_file(tmp_path):
    missing = tmp_path / "nowhere" / "secret"
    manifest = council_manifest("http://127.0.0.1:1", oauth2("https://idp.example/token", missing))

    with pytest.raises(ManifestError) as failed:
        RestJsonConnector(manifest)

    assert str(failed.value) == (
        f"connector council: auth.client_secret_file: {missing}: no such file")
    assert "\n" not in str(failed.value)


@pytest.mark.parametrize(("content", "why"), [
    ("", "the file is empty"),
    ("  \n", "the file is empty"),
    ("first\nsecond\n", "must hold one line of printable text"),
])
def test_a_secret_file_must_hold_one_line(tmp_path, content, why):
    path = tmp_path / "secret"
    path.write_text(content, encoding="utf-8")
    manifest = council_manifest("http://127.0.0.1:1", {
        "type": "header", "name": "X-Api-Key", "value_file": str(path)})

    with pytest.raises(ManifestError, match=f"auth.value_file: {path}: {why}$"):
        RestJsonConnector(manifest)


@pytest.mark.parametrize(("auth", "message"), [
    ({"type": "oauth2_client_credentials", "token_url": "https://idp.example/token",
      "client_id": "a", "client_secret": SECRET},
     "auth.oauth2_client_credentials: Value error, client_secret: a manifest holds no "
     "secrets; give client_secret_file (a path) instead"),
    ({"type": "header", "name": "X-Api-Key", "value": API_KEY},
     "auth.header: Value error, value: a manifest holds no secrets; give value_file (a path) "
     "instead"),
    ({"type": "mtls", "cert_file": "/c.pem", "key": "-----BEGIN PRIVATE KEY-----"},
     "auth.mtls: Value error, key: a manifest holds no secrets; give key_file (a path) "
     "instead"),
    ({"type": "header", "name": "X-Api-Key", "value_file": "/k", "api_key": API_KEY},
     "auth.header.api_key: Extra inputs are not permitted"),
    ({"type": "oauth2_client_credentials", "token_url": "http://idp.example/token",
      "client_id": "a", "client_secret_file": "/s"},
     "auth.oauth2_client_credentials.token_url: Value error, must be an https:// URL "
     "(http:// only to 127.0.0.1 or localhost)"),
    ({"type": "kerberos"}, "auth: Input tag 'kerberos' found using 'type' does not match any "
                           "of the expected tags: 'none', 'mtls', 'oauth2_client_credentials', "
                           "'header'"),
])
def test_a_manifest_holds_paths_never_secrets(auth, message):
    with pytest.raises(ManifestError) as refused:
        council_manifest("http://127.0.0.1:1", auth)

    assert str(refused.value) == f"manifest protected.toml: {message}"
    assert SECRET not in str(refused.value)
    assert API_KEY not in str(refused.value)


def test_a_manifest_file_with_an_auth_table(tmp_path, secret_file):
    text = (BUILTIN_DIR / "council.toml").read_text(encoding="utf-8") + (
        '\n[auth]\ntype = "oauth2_client_credentials"\n'
        'token_url = "https://login.example.gov.uk/oauth2/token"\n'
        f'client_id = "{CLIENT_ID}"\nclient_secret_file = "{secret_file}"\n'
        'scope = "children.read"\n')
    path = tmp_path / "leeds.toml"
    path.write_text(text, encoding="utf-8")

    auth = load_manifest(path).auth

    assert auth.type == "oauth2_client_credentials"
    assert auth.renew_before_seconds == 30
    assert SECRET not in repr(auth)


# -- the conformance kit against a protected system -------------------------------------------

async def test_the_conformance_kit_passes_a_protected_system(idp, protected, known, tmp_path,
                                                             secret_file):
    text = (BUILTIN_DIR / "council.toml").read_text(encoding="utf-8") + (
        f'\n[auth]\ntype = "oauth2_client_credentials"\ntoken_url = "{idp.url}{TOKEN_PATH}"\n'
        f'client_id = "{CLIENT_ID}"\nclient_secret_file = "{secret_file}"\n')
    path = tmp_path / "protected-council.toml"
    path.write_text(text, encoding="utf-8")

    results = await run_checks(str(path), protected.url, known[:2], None)

    assert {r.name: r.reason for r in results if not r.passed} == {}


async def test_the_conformance_kit_names_a_missing_secret_file(protected, known, tmp_path):
    missing = tmp_path / "missing-secret"
    text = (BUILTIN_DIR / "council.toml").read_text(encoding="utf-8") + (
        '\n[auth]\ntype = "header"\nname = "X-Api-Key"\n'
        f'value_file = "{missing}"\n')
    path = tmp_path / "keyed-council.toml"
    path.write_text(text, encoding="utf-8")

    results = await run_checks(str(path), protected.url, known[:1], None)

    assert results[0].name == "manifest"
    assert not results[0].passed
    assert str(missing) in results[0].reason



# -- a token endpoint that misbehaves ---------------------------------------------------------

@pytest.fixture
async def scripted_idp():
    """A token endpoint answering whatever the test puts in `answer` (status, body)."""
    answer = {"status": 200, "body": b"{}", "hang": False}

    async def token(request):
        if answer["hang"]:
            await asyncio.Event().wait()  # never answers; the client's timeout ends it
        return web.Response(status=answer["status"], body=answer["body"],
                            content_type="application/json")

    app = web.Application()
    app.router.add_post(TOKEN_PATH, token)
    async with serve_simulator("idp", app, shutdown_timeout=0.1) as running:
        yield running, answer


@pytest.mark.parametrize(("status", "body", "detail"), [
    (500, b'{"error": "server_error"}', "token endpoint: HTTP 500"),
    (404, b"<html>not here</html>", "token endpoint: HTTP 404"),
    (400, '{"error": "invalid_scope", "error_description": "caf\u00e9 \\"x\\""}'.encode(),
     "token endpoint refused the client (invalid_scope)"),
    (400, b'{"error": "Evil Injected: hunter2"}', "token endpoint refused the client"),
    (200, b"not json", "token endpoint: answer is not a usable token"),
    (200, b"[1, 2]", "token endpoint: answer is not a usable token"),
    (200, b'{"token_type": "Bearer", "expires_in": 60}', "token endpoint: no usable access_token"),
    (200, b'{"access_token": "abc", "token_type": "Bearer", "expires_in": 1e999}',
     "token endpoint: answer is not a usable token"),
    (200, b'{"access_token": "abc", "token_type": "Bearer", "expires_in": [1]}',
     "token endpoint: answer is not a usable token"),
    (200, b'{"access_token": "abc", "token_type": "mac"}',
     "token endpoint: token_type is not Bearer"),
    (200, b'{"access_token": "' + b"a" * 70_000 + b'", "token_type": "Bearer"}',
     "token endpoint: answer too large"),
])
async def test_a_token_endpoint_answering_badly_is_a_connector_error(
        scripted_idp, protected, known, secret_file, connect, status, body, detail):
    idp, answer = scripted_idp
    answer.update(status=status, body=body)
    connector = connect(council_manifest(protected.url,
                                         oauth2(idp.url + TOKEN_PATH, secret_file)))

    with pytest.raises(ConnectorAuthError) as failed:
        await connector.fetch(known[0])

    assert failed.value.detail == detail
    assert SECRET not in str(failed.value)
    assert sum(protected.hits.values()) == 0


async def test_a_token_endpoint_that_never_answers_times_out(scripted_idp, protected, known,
                                                             secret_file, connect):
    idp, answer = scripted_idp
    answer["hang"] = True
    connector = connect(council_manifest(
        protected.url, oauth2(idp.url + TOKEN_PATH, secret_file), timeout=0.3))

    with pytest.raises(ConnectorTimeoutError, match="token endpoint: no answer"):
        await connector.fetch(known[0])


async def test_a_token_without_expires_in_is_kept_until_refused(population, scripted_idp, known,
                                                                secret_file, connect):
    idp, answer = scripted_idp
    answer["body"] = b'{"access_token": "only-token", "token_type": "bearer"}'
    app = require_header(create_council_app(population), "Authorization", "Bearer only-token")
    async with serve_simulator("council", app, shutdown_timeout=0.2) as system:
        connector = connect(council_manifest(system.url,
                                             oauth2(idp.url + TOKEN_PATH, secret_file)))
        for nhs in known[:3]:
            assert await connector.fetch(nhs) is not None
    assert app[REFUSED] == {}


def test_secret_files_that_cannot_be_used(tmp_path):
    folder = tmp_path / "a-folder"
    folder.mkdir()
    huge = tmp_path / "huge"
    huge.write_text("x" * 20_000, encoding="utf-8")
    latin = tmp_path / "latin"
    latin.write_bytes(b"caf\xe9")
    for path, why in ((folder, "cannot be read (Is a directory)"),
                      (huge, "too large for a secret"), (latin, "not UTF-8 text")):
        manifest = council_manifest("http://127.0.0.1:1", {
            "type": "header", "name": "X-Api-Key", "value_file": str(path)})
        with pytest.raises(ManifestError) as failed:
            RestJsonConnector(manifest)
        assert str(failed.value) == f"connector council: auth.value_file: {path}: {why}"


def test_a_static_header_masks_its_value():
    header = StaticHeader("X-Api-Key", SecretStr(API_KEY))

    assert API_KEY not in repr(header)
    assert not header.refused({"X-Api-Key": API_KEY})


def test_the_readme_examples_are_valid_manifests():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Protected systems", 1)[1].split("\n### ", 1)[0]
    examples = re.findall(r"```toml\n(.*?)```", section, flags=re.DOTALL)

    kinds = [council_manifest("https://council.example", tomllib.loads(example)["auth"]).auth.type
             for example in examples]

    assert kinds == ["oauth2_client_credentials", "header", "mtls"]


@pytest.mark.parametrize(("expires_in", "renewed_after"), [
    ('"120"', 90.0),  # a string, as some servers send it
    ("120", 90.0),
    ("40", 20.0),  # renewed at most half its lifetime early
    ("null", None),  # no lifetime: kept until refused
])
async def test_when_a_token_is_renewed(scripted_idp, secret_file, expires_in, renewed_after):
    idp, answer = scripted_idp
    answer["body"] = (f'{{"access_token": "t", "token_type": "Bearer", '
                      f'"expires_in": {expires_in}}}').encode()
    now = [0.0]
    spec = council_manifest("http://127.0.0.1:1", oauth2(idp.url + TOKEN_PATH, secret_file)).auth
    tokens = ClientCredentialsTokens("council", spec, _secret(), timeout_seconds=2.0,
                                     clock=lambda: now[0])
    try:
        await tokens.token()
        now[0] = (renewed_after or 10_000.0) - 0.01
        await tokens.token()
        assert tokens.fetches == 1
        now[0] += 0.02
        await tokens.token()
    finally:
        await tokens.close()

    assert tokens.fetches == (1 if renewed_after is None else 2)
