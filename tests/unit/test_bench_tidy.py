"""The bench removes its temporary folder, or only the databases when files are named
or the run failed."""

import argparse

import pytest

from bench.__main__ import _parser, tidy


def _folder(tmp_path):
    root = tmp_path / "cpg-bench-x"
    gateway = root / "gateway-0"
    gateway.mkdir(parents=True)
    for name in ("audit.db", "audit.db-wal", "outbox.db", "gateway.log", "py-spy-1.txt"):
        (gateway / name).write_text("x")
    return root, gateway


def _args(*options: str) -> argparse.Namespace:
    return _parser().parse_args(list(options))


def test_a_plain_run_leaves_nothing(tmp_path):
    root, _ = _folder(tmp_path)
    tidy(root, _args(), completed=True)
    assert not root.exists()


def test_a_failed_run_keeps_the_logs(tmp_path):
    root, gateway = _folder(tmp_path)
    tidy(root, _args(), completed=False)
    assert sorted(p.name for p in gateway.iterdir()) == ["gateway.log", "py-spy-1.txt"]


@pytest.mark.parametrize("options", [["--profile", "10"], ["--timeline"], ["--count-calls"],
                                     ["--instructions"], ["--soak-seconds", "60"]])
def test_named_files_are_kept_and_the_databases_removed(tmp_path, options):
    root, gateway = _folder(tmp_path)
    tidy(root, _args(*options), completed=True)
    assert sorted(p.name for p in gateway.iterdir()) == ["gateway.log", "py-spy-1.txt"]


def test_keep_keeps_everything(tmp_path):
    root, gateway = _folder(tmp_path)
    tidy(root, _args("--keep"), completed=False)
    assert len(list(gateway.iterdir())) == 5
