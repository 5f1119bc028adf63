"""`bench.instructions`: a real process under callgrind, counted between `start` and `dump`."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from bench import instructions

pytestmark = pytest.mark.skipif(not instructions.available(),
                                reason="valgrind is not installed")

# Work in small steps with pauses, so callgrind reads its commands between them; the
# size of a step is read from a file, so one process can be counted at two sizes.
_WORKER = """
import pathlib, sys, time
size = pathlib.Path(sys.argv[1])
size.with_name("ready").touch()
while True:
    n = int(size.read_text() or 0)
    sum(i * i for i in range(n))
    time.sleep(0.05)
"""


def _count(pid: int, folder: Path, size: Path, n: int, seconds: float) -> int:
    size.write_text(str(n))
    time.sleep(0.5)  # the step under way when the size changed ends first
    instructions.start(pid, folder)
    time.sleep(seconds)
    counted = instructions.dump(pid, folder)
    assert counted is not None
    return counted


def test_only_the_run_between_start_and_dump_is_counted(tmp_path: Path):
    size = tmp_path / "size"
    size.write_text("0")
    process = subprocess.Popen([*instructions.prefix(tmp_path), sys.executable, "-c", _WORKER,
                                str(size)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "ready").exists():  # started: what runs now is the loop
            assert time.monotonic() < deadline, "the worker did not start under valgrind"
            time.sleep(0.1)
        idle = _count(process.pid, tmp_path, size, 0, 2.0)
        busy = _count(process.pid, tmp_path, size, 300_000, 2.0)
    finally:
        process.kill()
        process.wait()
    assert not list(Path(tempfile.gettempdir()).glob(f"vgdb-pipe-*-{process.pid}-*"))
    # The busy window runs hundreds of millions of instructions more than the idle one; had
    # the count not been zeroed at `start`, or not dumped anew, the two would be alike.
    assert idle > 0
    assert busy > 5 * idle
