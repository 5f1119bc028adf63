"""Instructions per request: the gateway under valgrind's callgrind, counting a timed run only.

`python -m bench --instructions` starts the gateway as `valgrind --tool=callgrind
--instr-atstart=no ... python -m gateway.web.cli serve ...`: it runs uninstrumented (about
ten times slower than natively) until the timed run, when `callgrind_control` switches the
instrumentation on and zeroes the count, and after it dumps the count and switches it off.

The count is every user-space instruction of the process (all its threads: the event loop,
SQLite's, the log writer's) over the run, divided by the requests. It is the steadiest
figure the bench has: on a shared machine whose speed moves by 10 to 20 % between minutes,
the same code and load give the same count to within about 1 %, so a change of a few per
cent in the work per request shows. What it leaves out is the kernel (system calls, the
network stack) and the cost of cache misses and branch mispredictions: instructions are
not time, and a change that moves work into the kernel looks cheaper than it is.

Under callgrind the gateway serves tens of requests a second at most: give a low `--rate`
(`--rate 5 --seconds 30`, say) and a small `--hot` set; a closed-loop run measures it
saturated, which is fine for a count but not for the latencies printed beside it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["available", "dump", "prefix", "start"]

_CONTROL_SECONDS = 120.0
"""How long a `callgrind_control` command may take: valgrind reads its commands between
time slices of the program, which under instrumentation can be slow."""

_TOTALS = re.compile(rb"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


def available() -> bool:
    """True when valgrind and callgrind_control are installed."""
    return shutil.which("valgrind") is not None and shutil.which("callgrind_control") is not None


def _vgdb_prefix(output_dir: Path) -> str:
    # valgrind's gdbserver pipes, through which callgrind_control talks to it: in the
    # run's own folder, not /tmp, where a killed run would leave them behind.
    return f"--vgdb-prefix={output_dir}/vgdb"


def prefix(output_dir: Path) -> list[str]:
    """The command words to put before the gateway's own (`python -m ...`)."""
    return [shutil.which("valgrind") or "valgrind", "--tool=callgrind", "--instr-atstart=no",
            "--dump-instr=no", "--compress-strings=no", _vgdb_prefix(output_dir),
            f"--callgrind-out-file={output_dir}/callgrind.out.%p"]


def _control(pid: int, output_dir: Path, *options: str) -> None:
    control = shutil.which("callgrind_control") or "callgrind_control"
    subprocess.run([control, _vgdb_prefix(output_dir), *options, str(pid)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=_CONTROL_SECONDS)


def start(pid: int, output_dir: Path) -> None:
    """Instrument from now on and start the count from zero (just before a timed run)."""
    _control(pid, output_dir, "--instr=on")
    _control(pid, output_dir, "--zero")


def dump(pid: int, output_dir: Path) -> int | None:
    """Dump the count since `start`, stop instrumenting; the instructions counted, or None."""
    before = set(output_dir.glob(f"callgrind.out.{pid}*"))
    _control(pid, output_dir, "--dump")
    _control(pid, output_dir, "--instr=off")
    deadline = time.monotonic() + _CONTROL_SECONDS
    while time.monotonic() < deadline:
        for path in set(output_dir.glob(f"callgrind.out.{pid}*")) - before:
            found = _TOTALS.search(path.read_bytes())
            if found:
                return int(found.group(1))
        time.sleep(0.1)
    return None
