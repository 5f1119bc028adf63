"""Where an open-loop run's slow requests were (`--timeline`): one request at a time, by time.

A p99 says how slow the slowest hundredth was, not whether they came one at a time or
all together, nor what the machine was doing then. With `--timeline` the Python client
keeps each request's intended send time and latency, and the bench samples, every
`WINDOW_SECONDS`, the CPU time of the gateway's processes, of everything else on the
gateway's CPUs and of the load CPUs (the simulators, the clients, the bench). Then, in
the run's temporary folder:

- `timeline-*.csv`: one row per request, `sent_s,latency_ms` (latency empty: it failed);
- `windows-*.csv`: per window of send time, the requests sent, how many went over the
  threshold, their p50 and max, and the CPUs' worth busy (gateway, others on its CPUs,
  load CPUs) over that window;

and a `"tail"` line. The threshold is the p99 target, 2 x the simulator latency. A window
in which some request went over (or failed) is slow; consecutive slow windows make an
episode. The line gives the share of the run's time spent in episodes, the share of the
requests over the threshold that the five longest episodes hold (listed under "worst"),
how busy each CPU set was during episodes and elsewhere, and the share of requests over
the threshold among those sent in windows of each busy figure of the gateway (0.7-0.8,
0.8-0.9, ...):

- a few episodes holding most of the slow requests, the gateway's CPU near 1.0 in them:
  a backlog at the gateway (more work, or slower work, than its CPU could do then);
- the load CPUs near their count in them: the simulators or the client fell behind;
- others well above 0 on the gateway's CPUs in them: a neighbour took the CPU;
- slow requests spread thinly over many short episodes: queueing, nothing in particular.

/proc counts CPU time in ticks of 10 ms, so a window's busy figure is good to about
±0.1 CPU (the means over many windows are much better).
"""

from __future__ import annotations

import asyncio
import bisect
import csv
import statistics
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench import procs

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

__all__ = ["WINDOW_SECONDS", "CpuSample", "Episode", "Window", "by_gateway_busy", "episodes",
           "sample_cpus", "tail_line", "windows", "write_csv"]

WINDOW_SECONDS = 0.1
WORST = 5
"""Episodes listed in the tail line: the longest first (by windows, then by their slowest
request)."""


@dataclass(frozen=True)
class CpuSample:
    """Cumulative CPU seconds at one instant (`time.perf_counter()`), None where unknown."""

    at: float
    gateway: float | None
    gateway_cpus: float | None
    """Busy seconds of the gateway's CPUs since boot, whoever used them."""
    load_cpus: float | None


@dataclass(frozen=True)
class Window:
    start: float
    """Seconds from the first request's intended send time."""
    sent: int
    over: int
    """Requests sent in this window that failed or took longer than the threshold."""
    p50_ms: float | None
    max_ms: float | None
    gateway_busy: float | None
    others_busy: float | None
    """Everything but the gateway on the gateway's CPUs."""
    load_busy: float | None


@dataclass(frozen=True)
class Episode:
    windows: tuple[Window, ...]

    @property
    def over(self) -> int:
        return sum(w.over for w in self.windows)

    @property
    def max_ms(self) -> float:
        return max((w.max_ms or 0.0) for w in self.windows)

    def mean(self, key: str) -> float | None:
        return _mean(self.windows, key)


async def sample_cpus(pid: int, gateway_cpus: set[int], load_cpus: set[int],
                      into: list[CpuSample]) -> None:
    """Append a sample to `into` every `WINDOW_SECONDS` until cancelled (on the bench's loop,
    which runs on the load CPUs and is idle while the clients' processes work)."""
    while True:
        snapshot = procs.cpu_snapshot(pid)
        into.append(CpuSample(at=time.perf_counter(),
                              gateway=sum(snapshot.values()) if snapshot else None,
                              gateway_cpus=procs.cpus_busy_seconds(gateway_cpus),
                              load_cpus=procs.cpus_busy_seconds(load_cpus)))
        await asyncio.sleep(WINDOW_SECONDS)


class _Counter:
    """One cumulative counter of the samples, read at any instant between two of them."""

    def __init__(self, samples: Sequence[CpuSample], key: str) -> None:
        known = [(s.at, float(v)) for s in samples if (v := getattr(s, key)) is not None]
        self.times = [at for at, _ in known]
        self.values = [v for _, v in known]

    def at(self, when: float) -> float | None:
        """Interpolated between the samples around `when` (None outside them)."""
        index = bisect.bisect_right(self.times, when)
        if index == len(self.times) and self.times and when - self.times[-1] < 1e-9:
            return self.values[-1]  # on the last sample
        if index == 0 or index == len(self.times):
            return None
        t0, t1 = self.times[index - 1], self.times[index]
        v0, v1 = self.values[index - 1], self.values[index]
        return v0 + (v1 - v0) * (when - t0) / (t1 - t0)

    def rate(self, start: float, end: float) -> float | None:
        """CPUs' worth busy between `start` and `end`."""
        low, high = self.at(start), self.at(end)
        return None if low is None or high is None else max(0.0, (high - low) / (end - start))


def windows(timeline: Sequence[tuple[float, float | None]], samples: Sequence[CpuSample],
            threshold_ms: float, width: float = WINDOW_SECONDS) -> list[Window]:
    """The run cut into windows of send time; `timeline` holds (intended send time, latency
    in seconds or None for a failure), both clocks `time.perf_counter()`."""
    if not timeline:
        return []
    origin = min(sent for sent, _ in timeline)
    buckets: dict[int, list[float | None]] = {}
    for sent, latency in timeline:
        # (the small term: a send time on a boundary belongs to the window it opens)
        buckets.setdefault(int((sent - origin) / width + 1e-9), []).append(latency)
    gateway_cpu, cpus_cpu, load_cpu = (_Counter(samples, key)
                                       for key in ("gateway", "gateway_cpus", "load_cpus"))
    out = []
    for index in range(max(buckets) + 1):
        latencies = buckets.get(index, [])
        done = sorted(x * 1000 for x in latencies if x is not None)
        start = origin + index * width
        gateway = gateway_cpu.rate(start, start + width)
        cpus = cpus_cpu.rate(start, start + width)
        load = load_cpu.rate(start, start + width)
        out.append(Window(
            start=round(index * width, 3), sent=len(latencies),
            over=sum(1 for x in latencies if x is None or x * 1000 > threshold_ms),
            p50_ms=round(statistics.median(done), 1) if done else None,
            max_ms=round(done[-1], 1) if done else None,
            gateway_busy=None if gateway is None else round(gateway, 2),
            others_busy=None if gateway is None or cpus is None
            else round(max(0.0, cpus - gateway), 2),
            load_busy=None if load is None else round(load, 2)))
    return out


def episodes(cut: Sequence[Window]) -> list[Episode]:
    """Runs of consecutive windows in which some request went over the threshold."""
    found: list[Episode] = []
    current: list[Window] = []
    for window in [*cut, None]:
        if window is not None and window.over:
            current.append(window)
        elif current:
            found.append(Episode(tuple(current)))
            current = []
    return found


def _mean(cut: Sequence[Window], key: str) -> float | None:
    values = [v for w in cut if (v := getattr(w, key)) is not None]
    return round(statistics.fmean(values), 2) if values else None


def tail_line(name: str, variant: str, round_: int, cut: Sequence[Window], threshold_ms: float,
              files: Sequence[Path]) -> dict[str, Any]:
    """The `"tail"` line (see the module docstring)."""
    found = episodes(cut)
    over = sum(w.over for w in cut)
    inside_windows = [w for w in cut if w.over]  # an episode's windows are the slow ones
    rest = [w for w in cut if not w.over]
    worst = sorted(found, key=lambda e: (len(e.windows), e.max_ms), reverse=True)[:WORST]
    return {
        "tail": name, "variant": variant, "round": round_, "threshold_ms": threshold_ms,
        "window_ms": round(WINDOW_SECONDS * 1000), "requests": sum(w.sent for w in cut),
        "over_threshold": over, "episodes": len(found),
        "time_in_episodes_pct": round(100 * len(inside_windows) / len(cut), 1) if cut else None,
        "over_in_worst_episodes_pct": round(100 * sum(e.over for e in worst) / over, 1)
        if over else None,
        "gateway_busy_in_episodes": _mean(inside_windows, "gateway_busy"),
        "gateway_busy_elsewhere": _mean(rest, "gateway_busy"),
        "others_busy_in_episodes": _mean(inside_windows, "others_busy"),
        "others_busy_elsewhere": _mean(rest, "others_busy"),
        "load_busy_in_episodes": _mean(inside_windows, "load_busy"),
        "load_busy_elsewhere": _mean(rest, "load_busy"),
        "over_pct_by_gateway_busy": by_gateway_busy(cut),
        "worst": [{"at_s": e.windows[0].start,
                   "seconds": round(len(e.windows) * WINDOW_SECONDS, 1),
                   "over": e.over, "max_ms": e.max_ms,
                   "gateway_busy": e.mean("gateway_busy"), "others_busy": e.mean("others_busy"),
                   "load_busy": e.mean("load_busy")} for e in worst],
        "files": [str(f) for f in files]}


def by_gateway_busy(cut: Sequence[Window]) -> list[dict[str, Any]]:
    """Windows grouped by the gateway's busy figure (steps of 0.1 CPU): how many, and the
    share of the requests sent in them that went over. A share that climbs with the busy
    figure says the tail is the gateway's CPU backlog; one high at low busy figures, that
    the gateway was waiting on something else."""
    groups: dict[int, list[Window]] = {}
    for w in cut:
        if w.gateway_busy is not None and w.sent:
            groups.setdefault(int(round(w.gateway_busy * 10, 6)), []).append(w)
    return [{"gateway_busy": f"{step / 10:.1f}-{(step + 1) / 10:.1f}", "windows": len(group),
             "over_pct": round(100 * sum(w.over for w in group) / sum(w.sent for w in group), 1)}
            for step, group in sorted(groups.items())]


def write_csv(timeline: Sequence[tuple[float, float | None]], cut: Sequence[Window],
              timeline_file: Path, windows_file: Path) -> None:
    origin = min((sent for sent, _ in timeline), default=0.0)
    with timeline_file.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["sent_s", "latency_ms"])
        for sent, latency in timeline:
            writer.writerow([f"{sent - origin:.4f}",
                             "" if latency is None else f"{latency * 1000:.2f}"])
    with windows_file.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["start_s", "sent", "over", "p50_ms", "max_ms", "gateway_busy",
                         "others_busy", "load_busy"])
        for w in cut:
            writer.writerow(["" if v is None else v for v in (
                w.start, w.sent, w.over, w.p50_ms, w.max_ms, w.gateway_busy, w.others_busy,
                w.load_busy)])
