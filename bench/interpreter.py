"""The interpreter the gateway runs on: which CPython build, and how fast it runs Python here.

Two runs' CPU figures compare only where machine and interpreter agree, and both vary:
on one machine (README "Benchmark"), the same commit cost 2.60 ms of CPU per cache miss
on a CPython built as a shared library without profile-guided or link-time optimisation
and 2.12 ms on the distribution's optimised build, with the same instructions per
request. The bench's header carries `describe()`: the build (`configure`'s optimisation
options, whether the interpreter is a shared library) and `probe_ms`, the CPU time of a
fixed loop of plain Python on the gateway's CPUs, a yardstick for the machine and build.
"""

from __future__ import annotations

import platform
import shlex
import subprocess
import sys
import sysconfig
from typing import Any

from bench import procs

__all__ = ["OPTIMISATIONS", "PROBE", "configured", "describe", "probe_ms"]

OPTIMISATIONS = ("--enable-optimizations", "--with-lto")
"""`configure` options that make CPython faster (PGO, LTO). Some distributions' builds are
optimised by their own build rules and name neither: `probe_ms` tells."""

PROBE = """
import time

def record(i):
    return {"id": i, "name": "child-%d" % i, "tags": [i, i + 1], "ok": i % 3 == 0}

def work():
    total = 0
    for i in range(20_000):
        item = record(i)
        total += len(item["name"]) + sum(item["tags"]) + (1 if item["ok"] else 0)
    return total

best = None
for _ in range(7):
    start = time.process_time()
    work()
    spent = time.process_time() - start
    best = spent if best is None else min(best, spent)
print(round(best * 1000, 2))
"""
"""Calls, small dicts and lists, string formatting: plain Python of the request path's kind,
best of seven (the least disturbed by other processes)."""


def configured(config_args: str | None) -> list[str]:
    """The optimisation options among `configure`'s arguments (as sysconfig records them);
    ``--with-lto=full`` counts as ``--with-lto``, ``--with-lto=no`` not at all."""
    found = set()
    for word in shlex.split(config_args or ""):
        name, _, value = word.partition("=")
        if name in OPTIMISATIONS and value != "no":
            found.add(name)
    return [option for option in OPTIMISATIONS if option in found]


def probe_ms(cpus: set[int]) -> float | None:
    """CPU ms of `PROBE` in this interpreter, pinned to `cpus`; None if it could not run."""
    process = procs.spawn_pinned([sys.executable, "-c", PROBE], cpus, stdout=subprocess.PIPE)
    try:
        out, _ = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return None
    try:
        return float(out) if process.returncode == 0 else None
    except ValueError:
        return None


def describe(cpus: set[int]) -> dict[str, Any]:
    """The interpreter's build and its `probe_ms` on `cpus` (the gateway's)."""
    return {
        "implementation": platform.python_implementation(),
        "version": platform.python_version(),
        "shared_library": bool(sysconfig.get_config_var("Py_ENABLE_SHARED")),
        "configured": configured(sysconfig.get_config_var("CONFIG_ARGS")),
        "probe_ms": probe_ms(cpus),
    }
