"""The bench's `--timeline`: requests cut into windows of send time, CPU busy per window
from cumulative samples, episodes of slow windows, and the tail line over them."""

import asyncio
import csv
import os
from pathlib import Path

from bench import timeline
from bench.timeline import CpuSample, episodes, tail_line, windows, write_csv

THRESHOLD_MS = 40.0


def _samples(gateway_busy: list[float], others: float = 0.0, load: float = 0.5,
             origin: float = 100.0) -> list[CpuSample]:
    """Samples every 100 ms from `origin`, the gateway busy at the given fraction of a CPU in
    each interval that follows a sample."""
    out, gateway, cpus, load_total = [], 0.0, 0.0, 0.0
    for index, busy in enumerate([*gateway_busy, 0.0]):
        out.append(CpuSample(at=origin + index * 0.1, gateway=gateway, gateway_cpus=cpus,
                             load_cpus=load_total))
        gateway += busy * 0.1
        cpus += (busy + others) * 0.1
        load_total += load * 0.1
    return out


def _timeline(latencies_ms: list[list[float | None]], origin: float = 100.0) \
        -> list[tuple[float, float | None]]:
    """Per 100-ms window, requests sent evenly within it with these latencies."""
    out = []
    for index, window in enumerate(latencies_ms):
        for k, latency in enumerate(window):
            out.append((origin + index * 0.1 + k * 0.1 / len(window),
                        None if latency is None else latency / 1000))
    return out


def test_windows_count_what_was_sent_and_how_busy_each_cpu_set_was():
    requests = _timeline([[25.0, 26.0, 27.0], [30.0, 90.0, None], [24.0, 25.0, 26.0]])
    cut = windows(requests, _samples([0.5, 1.0, 0.6], others=0.1, load=0.7), THRESHOLD_MS)
    assert [w.sent for w in cut] == [3, 3, 3]
    assert [w.over for w in cut] == [0, 2, 0]  # 90 ms, and the failure
    assert [w.max_ms for w in cut] == [27.0, 90.0, 26.0]
    assert cut[1].p50_ms == 60.0  # of the two that were answered
    assert [w.gateway_busy for w in cut] == [0.5, 1.0, 0.6]
    assert [w.others_busy for w in cut] == [0.1, 0.1, 0.1]
    assert [w.load_busy for w in cut] == [0.7, 0.7, 0.7]
    assert [w.start for w in cut] == [0.0, 0.1, 0.2]


def test_busy_is_interpolated_between_samples_and_unknown_outside_them():
    samples = [CpuSample(at=100.0, gateway=0.0, gateway_cpus=0.0, load_cpus=None),
               CpuSample(at=100.2, gateway=0.1, gateway_cpus=0.2, load_cpus=None)]
    cut = windows(_timeline([[20.0], [20.0], [20.0]]), samples, THRESHOLD_MS)
    assert [w.gateway_busy for w in cut] == [0.5, 0.5, None]  # the third ends after the last
    assert [w.others_busy for w in cut] == [0.5, 0.5, None]
    assert all(w.load_busy is None for w in cut)


def test_an_empty_window_is_kept_so_that_time_stays_in_order():
    requests = [(100.0, 0.02), (100.25, 0.02)]
    cut = windows(requests, [], THRESHOLD_MS)
    assert [(w.start, w.sent, w.max_ms) for w in cut] == [(0.0, 1, 20.0), (0.1, 0, None),
                                                         (0.2, 1, 20.0)]
    assert windows([], [], THRESHOLD_MS) == []


def test_episodes_are_runs_of_slow_windows():
    cut = windows(_timeline([[20.0], [50.0], [60.0], [20.0], [45.0], [20.0]]), [],
                  THRESHOLD_MS)
    found = episodes(cut)
    assert [[w.start for w in e.windows] for e in found] == [[0.1, 0.2], [0.4]]
    assert [e.over for e in found] == [2, 1]
    assert [e.max_ms for e in found] == [60.0, 45.0]


def test_tail_line_says_where_the_slow_requests_were(tmp_path: Path):
    # 20 windows; one long episode (3 windows, the gateway saturated) and one short one
    latencies: list[list[float | None]] = [[25.0] * 4 for _ in range(20)]
    latencies[5] = [50.0, 60.0, 70.0, 80.0]
    latencies[6] = [90.0, 95.0, 85.0, 70.0]
    latencies[7] = [60.0, 30.0, 30.0, 30.0]
    latencies[15] = [25.0, 41.0, 25.0, 25.0]
    busy = [0.7] * 20
    busy[5] = busy[6] = busy[7] = 1.0
    cut = windows(_timeline(latencies), _samples(busy), THRESHOLD_MS)
    line = tail_line("cache-miss x32 @580/s", "plain", 1, cut, THRESHOLD_MS, [tmp_path / "t"])
    assert line["requests"] == 80
    assert line["over_threshold"] == 10
    assert line["episodes"] == 2
    assert line["time_in_episodes_pct"] == 20.0  # 4 windows of 20
    assert line["over_in_worst_episodes_pct"] == 100.0
    assert line["gateway_busy_in_episodes"] == round((1.0 * 3 + 0.7) / 4, 2)
    assert line["gateway_busy_elsewhere"] == 0.7
    assert line["others_busy_in_episodes"] == 0.0
    assert line["load_busy_elsewhere"] == 0.5
    longest = line["worst"][0]
    assert (longest["at_s"], longest["seconds"], longest["over"], longest["max_ms"]) == (
        0.5, 0.3, 9, 95.0)
    assert longest["gateway_busy"] == 1.0
    assert line["worst"][1]["at_s"] == 1.5
    assert line["over_pct_by_gateway_busy"] == [
        {"gateway_busy": "0.7-0.8", "windows": 17, "over_pct": round(100 * 1 / 68, 1)},
        {"gateway_busy": "1.0-1.1", "windows": 3, "over_pct": 75.0}]
    assert line["files"] == [str(tmp_path / "t")]


def test_tail_line_of_a_clean_run():
    cut = windows(_timeline([[25.0] * 3] * 5), _samples([0.5] * 5), THRESHOLD_MS)
    line = tail_line("run", "plain", 1, cut, THRESHOLD_MS, [])
    assert (line["over_threshold"], line["episodes"], line["time_in_episodes_pct"]) == (0, 0, 0.0)
    assert line["over_in_worst_episodes_pct"] is None
    assert line["gateway_busy_in_episodes"] is None
    assert line["gateway_busy_elsewhere"] == 0.5
    assert line["worst"] == []


def test_csv_files_hold_every_request_and_window(tmp_path: Path):
    requests = _timeline([[25.0, None], [41.5]])
    cut = windows(requests, _samples([0.5, 0.9]), THRESHOLD_MS)
    write_csv(requests, cut, tmp_path / "timeline.csv", tmp_path / "windows.csv")
    with (tmp_path / "timeline.csv").open() as f:
        rows = list(csv.reader(f))
    assert rows == [["sent_s", "latency_ms"], ["0.0000", "25.00"], ["0.0500", ""],
                    ["0.1000", "41.50"]]
    with (tmp_path / "windows.csv").open() as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["start_s", "sent", "over", "p50_ms", "max_ms", "gateway_busy",
                       "others_busy", "load_busy"]
    assert rows[1] == ["0.0", "2", "1", "25.0", "25.0", "0.5", "0.0", "0.5"]
    assert rows[2] == ["0.1", "1", "1", "41.5", "41.5", "0.9", "0.0", "0.5"]


def test_sampler_reads_this_process_cpu_until_cancelled():
    async def run() -> list[CpuSample]:
        into: list[CpuSample] = []
        task = asyncio.create_task(timeline.sample_cpus(os.getpid(), {0}, {0}, into))
        await asyncio.sleep(0.25)
        task.cancel()
        return into

    samples = asyncio.run(run())
    assert len(samples) >= 2
    assert all(s.gateway is not None and s.gateway >= 0 for s in samples)
    assert [s.at for s in samples] == sorted(s.at for s in samples)
    first, last = samples[0].gateway, samples[-1].gateway
    assert first is not None
    assert last is not None
    assert last >= first
