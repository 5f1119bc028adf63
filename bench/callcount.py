"""Python calls per request: the gateway under cProfile, counting during a timed run only.

`python -m bench.callcount OUTPUT serve ...` runs `contactpoint serve ...` with two signal
handlers: SIGUSR2 starts a fresh count on the main thread (the event loop's), SIGUSR1
stops it and writes cProfile's statistics to OUTPUT. `python -m bench --count-calls`
starts the gateway this way and sends the signals around each timed run.

A count is steadier than any timing on a shared machine: the same code under the same
load makes the same calls per request to within about 1 %, where the CPU ms per request
of one commit move by 10 % from one stretch of minutes to the next. So a change that
removes work shows as a smaller count whatever the machine is doing. What it does not
show is work inside a call (C code, the kernel), and a coroutine counts once per
resumption. cProfile slows the gateway about twice: the run's timings are not
comparable with a run without it.
"""

from __future__ import annotations

import cProfile
import pstats
import signal
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["START", "STOP", "Profile", "summary", "wait_for"]

START = signal.SIGUSR2
STOP = signal.SIGUSR1


class Profile(cProfile.Profile):
    """cProfile that sums the functions sharing one label instead of keeping the last.

    pstats names a function by (file, first line, name). Code made by `exec` shares one:
    every dataclass's generated `__init__` is ``("<string>", 2, "__init__")``. cProfile's
    own snapshot keeps only the last such function's counts, so those calls went missing
    from the total (a cache hit counted 1,351 calls; 1,415 with them told apart, in
    another run). Here they are added up.
    """

    def snapshot_stats(self) -> None:
        super().snapshot_stats()
        totals: dict[tuple[str, int, str], list[float]] = {}
        for entry in self.getstats():
            total = totals.setdefault(cProfile.label(entry.code), [0, 0, 0.0, 0.0])  # type: ignore[attr-defined]  # undocumented
            total[0] += entry.callcount - entry.reccallcount
            total[1] += entry.callcount
            total[2] += entry.inlinetime
            total[3] += entry.totaltime
        for key, (primitive, calls, inline, cumulative) in totals.items():
            self.stats[key] = (primitive, calls, inline, cumulative, self.stats[key][4])  # type: ignore[attr-defined]  # set by super()


def _serve(argv: list[str]) -> int:
    output = Path(argv[0])
    counting: list[cProfile.Profile] = []

    def start(_signum: int, _frame: object) -> None:
        if not counting:
            counting.append(Profile())
            counting[0].enable()

    def stop(_signum: int, _frame: object) -> None:
        if counting:
            profile = counting.pop()
            profile.disable()
            partial = output.with_suffix(".partial")
            profile.dump_stats(partial)
            partial.replace(output)  # whole or absent: the bench waits for it

    signal.signal(START, start)
    signal.signal(STOP, stop)
    from gateway.web.cli import main  # after the handlers: a signal never finds none

    return main(argv[1:])


def wait_for(output: Path, timeout: float = 30.0) -> bool:
    """True once the gateway has written `output` (it does so between two of its steps)."""
    deadline = time.monotonic() + timeout
    while not output.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _where(filename: str, line: int, name: str) -> str:
    if filename == "~":  # a built-in
        return name
    for marker in ("site-packages/", "/lib/python3."):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    else:
        root = str(Path(__file__).resolve().parent.parent) + "/"
        filename = filename.removeprefix(root)
    return f"{filename}:{line} {name}"


def summary(output: Path, requests: int, top: int = 15) -> dict[str, Any]:
    """Calls per request in all, and the `top` Python functions (not built-ins) by calls."""
    stats: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(str(output)).stats  # type: ignore[attr-defined]
    calls = sum(entry[1] for entry in stats.values())
    ranked = sorted(((entry[1], key) for key, entry in stats.items() if key[0] != "~"),
                    reverse=True)[:top]
    return {"python_calls_per_req": round(calls / requests) if requests else None,
            "top_functions": [{"function": _where(*key), "calls_per_req":
                               round(n / requests, 2) if requests else None}
                              for n, key in ranked],
            "raw": str(output)}


if __name__ == "__main__":
    sys.exit(_serve(sys.argv[1:]))
