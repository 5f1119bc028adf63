"""A newcomer's first hour: a demo client that says what is wrong, a 401 that says why."""

import logging
import subprocess
import time
from pathlib import Path

import pytest

from tests.auth.helpers import make_token
from tests.integration.harness import running_gateway
from tests.integration.test_socket_and_cli import free_port

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize(("mode", "logged"), [("development", True), ("production", False)])
async def test_the_reason_for_a_401_is_logged_in_development_only(
        sims, jwks, signing_key, caplog, mode, logged):
    token = make_token(signing_key, time.time(), claims={"amr": ["pwd"]})
    async with running_gateway(sims, jwks, signing_key, mode=mode) as gateway:
        with caplog.at_level(logging.INFO, logger="gateway.access"):
            response = await gateway.post({"query": "{ __typename }"}, token=token)
    assert response.status_code == 401
    assert "MFA" not in response.text  # the client hears one message, whatever the reason
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.access"]
    refused = [line for line in lines if "token refused: missing MFA" in line]
    assert bool(refused) is logged, lines
    assert not any(token in line for line in lines)


def test_demo_query_says_when_the_demo_is_not_running():
    port = free_port()
    result = subprocess.run([str(ROOT / "scripts" / "demo-query"), "--port", str(port),
                             "--children", "300"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"Nothing answers at http://127.0.0.1:{port} \u2014 "
                                     "is the demo running? (scripts/demo)")
    assert result.stdout == ""
