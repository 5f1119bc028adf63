"""`bench.callcount.summary`: calls per request from a real cProfile dump."""

from __future__ import annotations

import cProfile
from typing import TYPE_CHECKING

from bench.callcount import summary

if TYPE_CHECKING:
    from pathlib import Path


def _leaf(n: int) -> int:
    return n + 1


def _request() -> int:
    return sum(_leaf(n) for n in range(3))


def test_calls_are_counted_per_request_with_the_busiest_functions_first(tmp_path: Path):
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(10):
        _request()
    profile.disable()
    output = tmp_path / "calls.prof"
    profile.dump_stats(output)

    line = summary(output, requests=10, top=2)

    # Each request: _request, sum (a built-in), the generator resumed four times, _leaf x3.
    assert line["python_calls_per_req"] >= 9
    busiest = line["top_functions"]
    assert [entry["calls_per_req"] for entry in busiest] == [4.0, 3.0]
    assert busiest[0]["function"].endswith("<genexpr>")
    assert busiest[1]["function"] == "tests/unit/test_bench_callcount.py:14 _leaf"
