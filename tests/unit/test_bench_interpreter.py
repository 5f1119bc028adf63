"""The bench's header names the interpreter's build and measures how fast it runs Python."""

import os
import platform

import pytest

from bench.interpreter import configured, describe, probe_ms


@pytest.mark.parametrize(("config_args", "expected"), [
    ("'--prefix=/opt/py' '--enable-shared'", []),
    ("'--enable-optimizations' '--with-lto' '--enable-shared'",
     ["--enable-optimizations", "--with-lto"]),
    ("--with-lto=full --enable-optimizations", ["--enable-optimizations", "--with-lto"]),
    ("'--with-lto=no'", []),
    ("'--with-ltofoo'", []),
    ("'--with-lto'", ["--with-lto"]),
    ("", []),
    (None, []),
])
def test_configured_finds_the_optimisation_options(config_args, expected):
    assert configured(config_args) == expected


def test_describe_names_this_interpreter_and_times_the_probe():
    cpus = os.sched_getaffinity(0)
    found = describe(cpus)
    assert found["implementation"] == platform.python_implementation()
    assert found["version"] == platform.python_version()
    assert isinstance(found["shared_library"], bool)
    assert isinstance(found["probe_ms"], float)
    assert found["probe_ms"] > 0


def test_probe_ms_is_none_when_the_probe_cannot_run(monkeypatch):
    monkeypatch.setattr("bench.interpreter.PROBE", "raise SystemExit(3)")
    assert probe_ms(os.sched_getaffinity(0)) is None
