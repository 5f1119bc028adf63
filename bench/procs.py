"""The gateway's processes, from /proc: the tree under its pid, CPU time, RSS; and CPU pinning.

`contactpoint serve --workers N` is a supervisor with N worker processes (and
multiprocessing's resource tracker): every figure here sums over the whole tree.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["cpu_seconds", "cpu_snapshot", "cpu_spent", "cpus_busy_seconds", "load_split", "pin",
           "rss", "spawn_pinned", "status_rss_kib", "tree"]


def _children(pid: int) -> list[int]:
    """Direct children: `/proc/<pid>/task/*/children`, else a scan of /proc for the ppid."""
    found: list[int] = []
    tasks = Path(f"/proc/{pid}/task")
    try:
        listed = [t / "children" for t in tasks.iterdir()]
        if listed and listed[0].exists():
            for path in listed:
                with contextlib.suppress(OSError):
                    found += [int(c) for c in path.read_text().split()]
            return found
    except OSError:
        return []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants (an empty list if it has gone)."""
    if not Path(f"/proc/{pid}").exists():
        return []
    pids, queue = [], [pid]
    while queue:
        current = queue.pop()
        pids.append(current)
        queue += _children(current)
    return pids


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process, from /proc (None where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(pid: int) -> dict[int, float]:
    """CPU seconds of every process in the tree, by pid."""
    return {p: s for p in tree(pid) if (s := cpu_seconds(p)) is not None}


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> float | None:
    """CPU seconds spent between two snapshots (a process new since `before` counts from 0).

    A process that exited in between loses what it spent after `before`: workers do not
    exit during a run unless something is wrong, which the errors then say.
    """
    if not after:
        return None
    return sum(max(0.0, seconds - before.get(pid, 0.0)) for pid, seconds in after.items())


def cpus_busy_seconds(cpus: set[int], stat: str | None = None) -> float | None:
    """Seconds the given CPUs have spent busy (not idle or waiting for I/O) since boot, from
    /proc/stat (or its text `stat`); None where there is none."""
    if stat is None:
        try:
            stat = Path("/proc/stat").read_text()
        except OSError:
            return None
    busy = 0
    for line in stat.splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
            busy += sum(ticks) - ticks[3] - ticks[4]
    return busy / os.sysconf("SC_CLK_TCK")


def status_rss_kib(status: str) -> int | None:
    """`VmRSS` from the text of /proc/<pid>/status, in KiB."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def rss(pid: int) -> dict[str, Any]:
    """RSS of every process in the tree: total MiB and per process (`supervisor` is `pid`)."""
    processes: list[dict[str, Any]] = []
    for p in tree(pid):
        try:
            kib = status_rss_kib(Path(f"/proc/{p}/status").read_text())
            cmdline = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if kib is None:
            continue
        role = ("gateway" if p == pid else
                "resource_tracker" if any(b"resource_tracker" in a for a in cmdline) else
                "worker")
        processes.append({"pid": p, "role": role, "rss_mib": round(kib / 1024, 1)})
    if len(processes) > 1:
        processes[0]["role"] = "supervisor"
    return {"gateway_rss_mib": round(sum(float(p["rss_mib"]) for p in processes), 1),
            "gateway_processes": processes}


def pin(pid: int, cpus: set[int]) -> None:
    """Pin a process (its main thread; threads made later inherit) to `cpus`, where possible."""
    if cpus:
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setaffinity(pid, cpus)


def spawn_pinned(command: list[str], cpus: set[int],
                 stdout: int | IO[bytes] | None = None,
                 stderr: int | IO[bytes] | None = None,
                 env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start `command` already pinned to `cpus` (it inherits this thread's affinity at fork),
    so that every thread and worker process it makes stays there too. `env`: its whole
    environment (default: this process's)."""
    try:
        own = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        # the bench's own commands
        return subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env)
    pin(0, cpus)
    try:
        return subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env)
    finally:
        pin(0, own)


def load_split(load_cpus: int | None) -> tuple[set[int], set[int]]:
    """(gateway CPUs, load generator + simulator CPUs) from the CPUs this process may use.

    The load side gets the last `load_cpus` (default: half, at least one), the gateway the
    rest; on one CPU both get it (no pinning to speak of).
    """
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = list(range(os.cpu_count() or 1))
    if len(cpus) < 2:
        return set(cpus), set(cpus)
    count = max(1, len(cpus) // 2) if load_cpus is None else load_cpus
    count = min(max(1, count), len(cpus) - 1)
    return set(cpus[:-count]), set(cpus[-count:])
