"""Production is safe or it does not start: `serve`, `config check` and the app refuse alike."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from gateway.settings import (
    DEVELOPMENT_ISSUER,
    ConfigError,
    build_settings,
    check_production,
    production_problem,
)
from gateway.web.app import create_app

SECRET = "p" * 32
CLI = [sys.executable, "-m", "gateway.web.cli"]


def tree(**changes):
    base = {
        "mode": "production",
        "auth": {"issuer": "https://login.example", "audience": "gw",
                 "jwks_url": "https://login.example/jwks"},
        "cache": {"secret": SECRET, "redis_url": "redis://127.0.0.1:6379/0"},
        "ids": {"secret": SECRET},
        "audit": {"pseudonym_secret": SECRET, "store": "sqlite",
                  "checkpoint_file": "checkpoints.jsonl"},
        "documents": {"trusted_only": False},
        "connectors": [{"name": "gp", "manifest": "gp", "base_url": "http://127.0.0.1:1"}],
    }
    for key, value in changes.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return base


UNSAFE = [
    pytest.param({"audit": {"store": "none"}}, "needs an audit store", id="no-audit"),
    pytest.param({"auth": {"issuer": DEVELOPMENT_ISSUER}}, "development token issuer",
                 id="development-issuer"),
    pytest.param({"cache": {"redis_url": None}}, "needs Redis for budgets", id="no-shared-store"),
    pytest.param({"audit": {"checkpoint_file": None}}, "needs [audit] checkpoint_file",
                 id="no-published-checkpoints"),
    pytest.param({"documents": {"trusted_only": None}}, "trusted documents only",
                 id="trusted-documents-without-a-manifest"),
    pytest.param({"http": {"cors_allow_loopback": True}}, "cors_allow_loopback",
                 id="cors-any-local-page"),
]


@pytest.mark.parametrize(("changes", "reason"), UNSAFE)
def test_unsafe_production_settings_are_named(changes, reason):
    settings = build_settings(tree(**changes))
    assert reason in production_problem(settings)
    with pytest.raises(ConfigError, match=re.escape(reason)):
        check_production(settings)
    # The same settings are fine for the demo and development.
    assert production_problem(build_settings(tree(mode="development", **changes))) is None


def test_per_process_budgets_can_be_accepted_explicitly():
    settings = build_settings(tree(cache={"redis_url": None},
                                   budgets={"per_process_accepted": True}))
    assert production_problem(settings) is None
    assert production_problem(build_settings(tree())) is None


@pytest.mark.parametrize(("changes", "reason"), UNSAFE)
async def test_the_app_does_not_start_unsafe(changes, reason):
    app = create_app(build_settings(tree(**changes)))
    with pytest.raises(ConfigError, match=re.escape(reason)):
        async with app.router.lifespan_context(app):
            pass


def write(path, text):
    path.write_text(text)
    return path


SAFE_TOML = f'''
mode = "production"
[auth]
issuer = "https://login.example"
audience = "gw"
jwks_url = "https://login.example/jwks"
[cache]
secret = "{SECRET}"
redis_url = "redis://127.0.0.1:6379/0"
[ids]
secret = "{SECRET}"
[audit]
pseudonym_secret = "{SECRET}"
checkpoint_file = "checkpoints.jsonl"
[documents]
trusted_only = false
[[connectors]]
name = "gp"
manifest = "gp"
base_url = "http://127.0.0.1:1"
[[connectors]]
name = "youth_justice"
manifest = "youth_justice"
base_url = "http://127.0.0.1:2"
'''


def run(*args):
    # These files say exactly what they mean: no REDIS_URL from the shell (scripts/test's Redis).
    env = {name: value for name, value in os.environ.items() if name != "REDIS_URL"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=False,
                          env=env)


def test_config_check_says_ok_without_starting(tmp_path):
    result = run("config", "check", str(write(tmp_path / "gw.toml", SAFE_TOML)))
    assert result.returncode == 0, result.stderr
    assert "ok (production mode; systems: gp (fhir_r4), youth_justice (rest_json))" in result.stdout


@pytest.mark.parametrize(("replace", "by", "reason"), [
    ('[audit]\n', '[audit]\nstore = "none"\n', "needs an audit store"),
    ('checkpoint_file = "checkpoints.jsonl"\n', "", "needs [audit] checkpoint_file"),
    ('redis_url = "redis://127.0.0.1:6379/0"\n', "", "needs Redis for budgets"),
    ('issuer = "https://login.example"', f'issuer = "{DEVELOPMENT_ISSUER}"', "development token"),
    ('manifest = "youth_justice"', 'manifest = "nowhere.toml"', "nowhere.toml: no such file"),
    ('[ids]\n', '[ids]\ncolour = "red"\n', "ids.colour"),
])
@pytest.mark.parametrize("command", [("config", "check"), ("serve", "--config")])
def test_unsafe_or_invalid_configs_exit_2_with_one_line(tmp_path, replace, by, reason, command):
    assert replace in SAFE_TOML
    path = write(tmp_path / "gw.toml", SAFE_TOML.replace(replace, by))
    result = run(*command, str(path))
    assert result.returncode == 2
    assert reason in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
