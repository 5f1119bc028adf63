"""`contactpoint audit verify | export | init-db` run as a user would, in a subprocess."""

import asyncio
import json

import pytest

from gateway.accountability.audit import open_audit_log
from gateway.web.cli import main
from tests.audit.helpers import CLI, ROOT, SECRET, event


def write_config(path, audit):
    lines = ["[auth]", 'issuer = "https://issuer.example"', 'audience = "gw"',
             'jwks_url = "https://issuer.example/jwks"',
             "[cache]", f'secret = "{"c" * 32}"', "[ids]", f'secret = "{"i" * 32}"',
             "[audit]", *(f"{key} = {json.dumps(value)}" for key, value in audit.items()),
             "[[connectors]]", 'name = "gp"', 'manifest = "gp"', 'base_url = "http://127.0.0.1:1"']
    path.write_text("\n".join(lines) + "\n")
    return path


async def run(*args):
    process = await asyncio.create_subprocess_exec(
        *CLI, "audit", *map(str, args), cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode, out.decode(), err.decode()


async def config_with_log(backend, tmp_path, count=12):
    log = await open_audit_log(backend.settings())
    try:
        await log.record([event(i) for i in range(1, count + 1)])
    finally:
        await log.close()
    audit = {"pseudonym_secret": SECRET, "checkpoint_every": 5, **backend.options}
    return write_config(tmp_path / "gateway.toml", audit)


async def test_verify_ok_then_tampered(backend, tmp_path):
    config = await config_with_log(backend, tmp_path)
    assert await run("verify", "--config", config) == (0, "ok: 12 events, 2 checkpoints\n", "")
    await backend.tamper.modify(4)
    code, out, err = await run("verify", "--config", config)
    assert code == 1
    assert out.startswith("bad: event 4: modified (")
    assert len(out.splitlines()) == 1
    assert err == ""


async def test_export_to_stdout_and_file(backend, tmp_path):
    config = await config_with_log(backend, tmp_path)
    code, out, _ = await run("export", "--config", config)
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert sum(line["type"] == "event" for line in lines) == 12
    target = tmp_path / "audit.jsonl"
    assert (await run("export", "--config", config, "--out", target, "--fhir"))[0] == 0
    resources = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(resources) == 12
    assert resources[0]["resourceType"] == "AuditEvent"


@pytest.mark.parametrize(("command", "audit", "fragment"), [
    ("verify", {"store": "sqlite"}, "pseudonym_secret"),
    ("verify", {"store": "none", "pseudonym_secret": SECRET}, "there is no log"),
    ("verify", {"store": "postgresql", "pseudonym_secret": SECRET}, "postgresql_dsn"),
    ("export", {"pseudonym_secret": SECRET, "checkpoint_key_file": "/nonexistent.pem"},
     "cannot read"),
])
async def test_bad_config_exits_2_with_one_line(tmp_path, command, audit, fragment):
    config = write_config(tmp_path / "gateway.toml", audit)
    code, out, err = await run(command, "--config", config)
    assert code == 2
    assert out == ""
    assert fragment in err
    assert len(err.splitlines()) == 1


async def test_unreadable_store_exits_2(tmp_path):
    config = write_config(tmp_path / "gateway.toml", {
        "pseudonym_secret": SECRET, "sqlite_path": str(tmp_path / "missing.db")})
    code, _, err = await run("verify", "--config", config)
    assert code == 2
    assert "cannot read the log" in err
    assert not (tmp_path / "missing.db").exists()  # verifying never creates a log


async def test_init_db(pg):
    code, out, _ = await run("init-db", "--admin-dsn", pg.admin_dsn, "--gateway-role", pg.role)
    assert code == 0
    assert out.startswith("ok: schema contactpoint_audit ready")
    code, _, err = await run("init-db", "--admin-dsn", pg.admin_dsn, "--gateway-role", "x y")
    assert code == 2
    assert "must match" in err


def test_commands_in_process(sqlite_backend, pg, tmp_path, capsys):
    # The same commands without a subprocess, so coverage sees them.
    config = asyncio.run(config_with_log(sqlite_backend, tmp_path, count=6))
    assert main(["audit", "verify", "--config", str(config)]) == 0
    assert capsys.readouterr().out == "ok: 6 events, 1 checkpoints\n"
    out = tmp_path / "export.jsonl"
    assert main(["audit", "export", "--config", str(config), "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 7
    assert main(["audit", "export", "--config", str(config)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 7
    assert main(["audit", "export", "--config", str(config), "--out", str(tmp_path)]) == 2
    assert "cannot write" in capsys.readouterr().err
    asyncio.run(sqlite_backend.tamper.delete(2))
    assert main(["audit", "verify", "--config", str(config)]) == 1
    assert capsys.readouterr().out == "bad: event 2: deleted (no event 2 in the log)\n"
    assert main(["audit", "init-db", "--admin-dsn", pg.admin_dsn, "--gateway-role", pg.role]) == 0
    assert main(["audit", "verify", "--config", str(tmp_path / "missing.toml")]) == 2
    missing = write_config(tmp_path / "other.toml", {
        "pseudonym_secret": SECRET, "sqlite_path": str(tmp_path / "none.db")})
    assert main(["audit", "export", "--config", str(missing)]) == 2
    assert "cannot read the log" in capsys.readouterr().err
