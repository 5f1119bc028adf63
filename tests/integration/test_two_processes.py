"""Two gateway processes on one Redis enforce one harvesting budget."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.integration.harness import settings_tree
from tests.integration.test_socket_and_cli import free_port

ROOT = Path(__file__).parents[2]
QUERY = "query($id: ID!) { child(id: $id, purpose: SAFEGUARDING) { id } }"


def toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def write_config(path: Path, tree: dict) -> None:
    lines = [f"{k} = {toml(v)}" for k, v in tree.items() if not isinstance(v, dict | list)]
    for section, values in tree.items():
        if isinstance(values, dict):
            lines.append(f"[{section}]")
            lines += [f"{k} = {toml(v)}" for k, v in values.items()
                      if not isinstance(v, dict)]
            for sub, inner in values.items():
                if isinstance(inner, dict):
                    lines.append(f"[{section}.{sub}]")
                    lines += [f"{k} = {toml(v)}" for k, v in inner.items()]
    for connector in tree["connectors"]:
        lines.append("[[connectors]]")
        lines += [f"{k} = {toml(v)}" for k, v in connector.items()]
    path.write_text("\n".join(lines) + "\n")


async def wait_healthy(client: httpx.AsyncClient, process: subprocess.Popen) -> None:
    for _ in range(300):
        assert process.poll() is None, "gateway process exited"
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("gateway did not start")


async def test_two_processes_share_one_budget(sims, jwks, signing_key, tmp_path):
    from tests.integration.harness import Gateway

    # No audit (two processes would write one log): allowed in development mode only.
    tree = settings_tree(sims.urls(), jwks.url, mode="development",
                         audit={"store": "none"},
                         alerts={"path": str(tmp_path / "alerts.jsonl")},
                         budgets={"default": {"subject_per_hour": 5, "subject_per_day": 50,
                                              "organisation_per_day": 100}})
    config = tmp_path / "gateway.toml"
    write_config(config, tree)
    ports = [free_port(), free_port()]
    processes = [subprocess.Popen(
        [sys.executable, "-m", "gateway.web.cli", "serve", "--config", str(config),
         "--port", str(port)], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
        for port in ports]
    clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") for port in ports]
    try:
        for client, process in zip(clients, processes, strict=True):
            await wait_healthy(client, process)
        from gateway.crypto.ids import ChildIdCodec

        codec = ChildIdCodec(tree["ids"]["secret"], 86_400)
        helper = Gateway(clients[0], None, sims, signing_key, {}, None)
        token = helper.token()
        children = [c.nhs_number for c in sims.population.children[7:15]]
        codes = []
        for n, nhs in enumerate(children):
            variables = {"id": codec.encode(nhs, "client-a")}
            response = await clients[n % 2].post(
                "/graphql", json={"query": QUERY, "variables": variables},
                headers={"Authorization": f"Bearer {token}"})
            errors = response.json().get("errors", [])
            codes.append(errors[0]["extensions"]["code"] if errors else "OK")
        assert codes.count("ACCESS_BUDGET_EXCEEDED") == 3, codes
        assert codes[:5].count("ACCESS_BUDGET_EXCEEDED") == 0, codes
    finally:
        for client in clients:
            await client.aclose()
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
