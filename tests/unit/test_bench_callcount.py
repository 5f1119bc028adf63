"""`bench.callcount.summary`: calls per request from a real cProfile dump."""

from __future__ import annotations

import cProfile
from typing import TYPE_CHECKING, Any

from bench.callcount import Profile, summary

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


def test_functions_sharing_a_label_are_all_counted(tmp_path: Path):
    # Two functions made by exec from the same text share ("<string>", 1, "made"), as
    # every dataclass's generated __init__ does.
    first: dict[str, Any] = {}
    second: dict[str, Any] = {}
    exec("def made():\n    return 1\n", first)  # noqa: S102 -- a fixed text
    exec("def made():\n    return 2\n", second)  # noqa: S102 -- a fixed text
    profile = Profile()
    profile.enable()
    for _ in range(10):
        first["made"]()
        second["made"]()
        second["made"]()
    profile.disable()
    output = tmp_path / "calls.prof"
    profile.dump_stats(output)

    line = summary(output, requests=10, top=1)

    assert line["top_functions"] == [{"function": "<string>:1 made", "calls_per_req": 3.0}]
