"""Configuration: validated once, unknown keys rejected, secrets masked, one-line errors."""

import pytest

from gateway.settings import ConfigError, build_settings, environment_overrides, load_settings

SECRET = "x" * 32


def tree(**overrides):
    base = {
        "auth": {"issuer": "https://issuer.example", "audience": "gw",
                 "jwks_url": "https://issuer.example/jwks"},
        "cache": {"secret": SECRET},
        "ids": {"secret": SECRET},
        "audit": {"pseudonym_secret": SECRET},
        "connectors": [{"name": "gp", "manifest": "gp", "base_url": "http://127.0.0.1:1"}],
    }
    base.update(overrides)
    return base


def test_valid_tree():
    settings = build_settings(tree())
    assert settings.mode == "production"
    assert SECRET not in repr(settings)


@pytest.mark.parametrize(("change", "fragment"), [
    ({"surprise": 1}, "surprise"),
    ({"cache": {"secret": "short"}}, "cache.secret"),
    ({"auth": {"issuer": "i", "audience": "a", "jwks_url": "https://x", "algorithms": ["HS256"]}},
     "asymmetric"),
    ({"auth": {"issuer": "i", "audience": "a", "jwks_url": "https://x", "leeway_seconds": 60}},
     "leeway_seconds"),
    ({"connectors": [{"name": "gp", "manifest": "gp", "base_url": "http://a",
                      "cache_ttl_seconds": 301}]}, "cache_ttl_seconds"),
    ({"connectors": [{"name": "gp", "manifest": "gp", "base_url": "http://a"},
                     {"name": "gp", "manifest": "school", "base_url": "http://b"}]}, "unique"),
    ({"connectors": [{"name": "gp", "kind": "ldap", "base_url": "http://a"}]}, "kind"),
    ({"audit": {"pseudonym_secret": SECRET, "timeout_seconds": 0.5, "load_wait_ms": 250}},
     "load_wait_ms"),
    ({"connectors": [{"name": "gp", "manifest": "gp"}],
      "merge": {"authority": {"name": ["school"]}}}, "merge.authority.name"),
    ({"connectors": [{"name": "gp", "manifest": "gp"}],
      "merge": {"authority": {"services": ["gp"]}}}, "single-valued"),
    ({"connectors": []}, "connectors"),
    ({"case_references": {"pattern": "(unclosed"}}, "case_references: Value error, pattern"),
])
def test_invalid_trees_give_one_line_reasons(change, fragment):
    with pytest.raises(ConfigError) as info:
        build_settings(tree(**change))
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert SECRET not in message


def test_environment_overrides_the_file(tmp_path):
    path = tmp_path / "gateway.toml"
    path.write_text(
        '[auth]\nissuer = "https://issuer.example"\naudience = "gw"\n'
        'jwks_url = "https://issuer.example/jwks"\n'
        '[[connectors]]\nname = "gp"\nmanifest = "gp"\nbase_url = "http://127.0.0.1:1"\n')
    environ = {"CONTACTPOINT_CACHE_SECRET": SECRET, "CONTACTPOINT_ID_SECRET": SECRET,
               "CONTACTPOINT_AUDIT_SECRET": SECRET,
               "REDIS_URL": "redis://127.0.0.1:6379/0"}
    settings = load_settings(path, environ)
    assert settings.cache.redis_url == "redis://127.0.0.1:6379/0"
    assert environment_overrides({"CONTACTPOINT_MODE": "development"}) == {"mode": "development"}


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.toml", {})
    broken = tmp_path / "broken.toml"
    broken.write_text("[auth\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(broken, {})
