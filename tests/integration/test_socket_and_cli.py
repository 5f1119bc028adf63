"""Over a real socket: `contactpoint serve`, `contactpoint demo`, `dev-token`, `--fixtures`."""

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from gateway.auth.devissuer import DEV_AUDIENCE, DEV_ISSUER
from gateway.settings import build_settings
from gateway.web.app import create_app
from tests.integration.harness import FIND_QUERY, settings_tree

CLI = [sys.executable, "-m", "gateway.web.cli"]
ROOT = Path(__file__).parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_gateway_over_a_real_socket(sims, jwks, signing_key, tmp_path):
    from tests.integration.harness import Gateway

    settings = build_settings(settings_tree(
        sims.urls(), jwks.url, audit={"sqlite_path": str(tmp_path / "audit.db"),
                                      "checkpoint_file": str(tmp_path / "checkpoints.jsonl")},
        alerts={"path": str(tmp_path / "alerts.jsonl")},
        outbox={"sqlite_path": str(tmp_path / "outbox.db")}))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            helper = Gateway(client, None, sims, signing_key, sims.population.fixtures(), settings)
            nhs = helper.fixtures["ordinary"]
            body = await helper.gql(FIND_QUERY, {"s": {"nhsNumber": nhs}})
            assert len(body["data"]["findChildren"]) == 1
            response = await client.post("/graphql", json={"query": "{ __typename }"})
            assert response.status_code == 401
            assert response.headers["www-authenticate"].startswith("Bearer")
    finally:
        server.should_exit = True
        await serving


@pytest.mark.parametrize(("config", "fragment"), [
    ("[auth]\nissuer = 1\n", "invalid configuration"),
    ("not toml [", "not valid TOML"),
    ("surprise = true\n", "surprise"),
])
def test_serve_with_a_bad_config_exits_with_one_line(tmp_path, config, fragment):
    path = tmp_path / "gateway.toml"
    path.write_text(config)
    result = subprocess.run([*CLI, "serve", "--config", str(path)], capture_output=True,
                            text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_serve_with_a_missing_config_file(tmp_path):
    result = subprocess.run([*CLI, "serve", "--config", str(tmp_path / "nope.toml")],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert "cannot read" in result.stderr


def test_dev_token_claims():
    from joserfc import jwt

    from gateway.auth.devissuer import dev_key

    result = subprocess.run(
        [*CLI, "dev-token", "--sub", "p-1", "--scope", "child.identity.read", "--amr", "mfa",
         "--org", "org-9", "--client", "cli-1", "--ttl", "120"],
        capture_output=True, text=True, timeout=30, check=True)
    token = jwt.decode(result.stdout.strip(), dev_key(), algorithms=["ES256"])
    claims = token.claims
    assert token.header["typ"] == "at+jwt"
    assert (claims["iss"], claims["aud"], claims["sub"]) == (DEV_ISSUER, DEV_AUDIENCE, "p-1")
    assert (claims["client_id"], claims["org"], claims["amr"]) == ("cli-1", "org-9", ["mfa"])
    assert claims["exp"] - claims["iat"] == 120


def test_demo_fixtures_json():
    result = subprocess.run([*CLI, "demo", "--fixtures"], capture_output=True, text=True,
                            timeout=60, check=True)
    fixtures = json.loads(result.stdout)
    assert set(fixtures) == {"ordinary", "shielded", "sensitive_consented",
                             "sensitive_unconsented", "adult_no_consent", "adult_consented",
                             "school_only", "protection_plan", "looked_after",
                             "multi_service"}
    assert all(n.startswith("999") and len(n) == 10 for n in fixtures.values())


def _demo_record(port, fixture):
    result = subprocess.run(
        [sys.executable, "-m", "gateway.web.democlient", "--url",
         f"http://127.0.0.1:{port}/graphql", "--children", "300", "--fixture", fixture],
        capture_output=True, text=True, timeout=30, check=True)
    decoder, text = json.JSONDecoder(), result.stdout.strip()
    _, end = decoder.raw_decode(text)
    record, _ = decoder.raw_decode(text[end:].lstrip())
    return record["data"]["child"]


def test_demo_serves_a_record_from_all_four_systems(tmp_path):
    port = free_port()
    # the demo keeps its audit log and alerts in the working folder
    demo = subprocess.Popen([*CLI, "demo", "--port", str(port), "--children", "300"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert demo.stdout is not None
        deadline = time.monotonic() + 30
        banner = []
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            banner.append(line)
            if line.startswith("Ctrl-C") or not line:
                break
        assert any("cache" in line for line in banner), banner
        child = _demo_record(port, "ordinary")
        assert child["education"]
        assert child["primaryCare"]
        assert child["services"]
        assert [(s["connector"], s["status"]) for s in child["sources"]] == [
            ("gp", "ok"), ("school", "ok"), ("council", "ok"), ("youth_justice", "ok")]
        # The fourth system, added by its manifest alone: its services join the council's.
        child = _demo_record(port, "multi_service")
        sources = {s["source"] for s in child["services"]}
        assert sources == {"council", "youth_justice"}, child["services"]
        assert any(s["kind"] == "Referral order" for s in child["services"])
        services = next(p for p in child["provenance"] if p["field"] == "services")
        assert services["sources"] == ["council", "youth_justice"]
    finally:
        demo.terminate()
        demo.wait(timeout=15)
        if demo.stdout is not None:
            demo.stdout.close()
