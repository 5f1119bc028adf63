"""The `contactpoint` command's own choices: dev-token's sign-in methods, serve's workers."""

import pytest
from joserfc import jwt

from gateway.auth.devissuer import dev_key
from gateway.settings import build_settings
from gateway.web.cli import main
from gateway.web.serving import workers_problem

SECRET = "unit-test-secret-" + "s" * 32


def minted_amr(capsys, *options):
    assert main(["dev-token", "--sub", "p-1", "--scope", "child.identity.read", *options]) == 0
    token = capsys.readouterr().out.strip()
    return jwt.decode(token, dev_key(), algorithms=["ES256"]).claims.get("amr")


@pytest.mark.parametrize(("options", "amr"), [
    pytest.param((), ["pwd", "mfa"], id="default-is-multi-factor"),
    pytest.param(("--amr", "hwk"), ["hwk"], id="given"),
    pytest.param(("--amr", "pwd,otp", "--amr", "sc"), ["pwd", "otp", "sc"], id="several"),
    pytest.param(("--no-mfa",), ["pwd"], id="password-only"),
])
def test_dev_token_sign_in_methods(capsys, options, amr):
    assert minted_amr(capsys, *options) == amr


def test_amr_and_no_mfa_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as info:
        main(["dev-token", "--sub", "p", "--scope", "s", "--amr", "mfa", "--no-mfa"])
    assert info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize("workers", ["0", "-2", "two"])
def test_serve_workers_must_be_a_positive_count(capsys, workers):
    with pytest.raises(SystemExit) as info:
        main(["serve", "--workers", workers])
    assert info.value.code == 2
    assert "--workers" in capsys.readouterr().err


def settings(**budgets):
    redis = budgets.pop("redis", True)
    return build_settings({
        "auth": {"issuer": "https://login.example", "audience": "a",
                 "jwks_url": "https://login.example/jwks"},
        "cache": {"secret": SECRET, "redis_url": "redis://127.0.0.1:6379/0" if redis else None},
        "ids": {"secret": SECRET},
        "audit": {"pseudonym_secret": SECRET},
        "budgets": budgets,
        "connectors": [{"name": "gp", "manifest": "gp", "base_url": "http://127.0.0.1:1"}],
    })


@pytest.mark.parametrize(("workers", "budgets", "problem"), [
    pytest.param(1, {}, None, id="one-process"),
    pytest.param(4, {"processes": 4}, None, id="processes-cover-workers"),
    pytest.param(4, {"processes": 8}, None, id="more-processes-on-other-hosts"),
    pytest.param(4, {}, "while Redis is down", id="redis-down-shares"),
    pytest.param(4, {"when_redis_down": "refuse"}, None, id="redis-down-refuses"),
    pytest.param(4, {"redis": False, "processes": 2}, "without Redis", id="no-redis"),
    pytest.param(4, {"redis": False, "per_process_accepted": True}, None, id="accepted"),
])
def test_workers_against_budget_shares(workers, budgets, problem):
    found = workers_problem(settings(**budgets), workers)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found
        assert f"set processes >= {workers}" in found


def test_dev_token_carries_an_authority_for_connector_registration(capsys):
    assert main(["dev-token", "--sub", "yj-admin", "--scope", "connectors.manage",
                 "--authority", "council:youth_justice"]) == 0
    claims = jwt.decode(capsys.readouterr().out.strip(), dev_key(), algorithms=["ES256"]).claims
    assert (claims["authority"], claims["scope"]) == ("council:youth_justice", "connectors.manage")
    assert main(["dev-token", "--sub", "p-1", "--scope", "child.identity.read"]) == 0
    plain = jwt.decode(capsys.readouterr().out.strip(), dev_key(), algorithms=["ES256"]).claims
    assert "authority" not in plain
