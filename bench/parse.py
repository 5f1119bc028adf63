"""Pure parsing for the bench: percentiles, a Prometheus counter, py-spy stacks by layer."""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = ["LAYERS", "counter_total", "layer_of", "layer_summary", "percentile"]


def percentile(ordered: Sequence[float], p: float) -> float:
    """The `p`th percentile (nearest rank) of an ascending sequence; 0 when it is empty."""
    if not ordered:
        return 0.0
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100), at least 1
    return ordered[min(len(ordered), int(rank)) - 1]


def counter_total(text: str, name: str, label: str | None = None) -> float | None:
    """The sum of a counter's samples (every label set) in Prometheus text; None if absent.

    `name` may be given with or without `_total`; `_created` samples are not counted.
    `label` (such as ``'result="miss"'``) keeps only the samples whose label set holds it.
    """
    base = name.removesuffix("_total")
    pattern = re.compile(rf"^{re.escape(base)}(?:_total)?(\{{[^}}]*\}})?\s+(\S+)")
    values = [float(m.group(2)) for line in text.splitlines()
              if (m := pattern.match(line)) and (label is None or _holds(m.group(1), label))]
    return sum(values) if values else None


def _holds(labels: str | None, label: str) -> bool:
    return labels is not None and label in labels[1:-1].split(",")


# First match wins, tried on each frame's file from the leaf up; a frame in none of
# them (typing, re, enum, pydantic, ...) passes its time up to its caller.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("GC", ("<gc>", "(garbage collection)")),
    ("telemetry/logging", ("gateway/telemetry/", "gateway/logs", "/logging/",
                           "prometheus_client/", "opentelemetry/")),
    ("audit", ("gateway/accountability/", "/sqlite3/", "asyncpg/")),
    ("auth", ("gateway/auth/", "gateway/crypto/", "joserfc/", "cryptography/")),
    ("Redis", ("redis/", "gateway/limits/", "gateway/cache/")),
    ("lookup & policy", ("gateway/lookup/", "gateway/core/")),
    ("GraphQL", ("strawberry/", "graphql/", "resolvers/", "gateway/web/schema")),
    ("upstream", ("aiohttp/", "connectors/", "yarl/", "multidict/", "aiohappyeyeballs/")),
    ("JSON", ("/json/", "orjson", "ujson")),
    ("HTTP server", ("uvicorn/", "httptools/", "starlette/", "h11/", "gateway/web/")),
    ("asyncio/event loop", ("/asyncio/", "/selectors.py", "uvloop/")),
)

_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def layer_of(frames: Sequence[str]) -> str:
    """The layer a stack's self time goes to: its innermost frame in a known layer."""
    for frame in reversed(frames):
        match = _FRAME.match(frame)
        where = "/" + (match.group("file") if match else frame).replace("\\", "/")
        for layer, marks in LAYERS:
            if any(mark in where or mark in frame for mark in marks):
                return layer
    return "other"


_WAITS = ("threading.py", "queue.py", "concurrent/futures/thread.py")


def _idle_worker(frames: Sequence[str]) -> bool:
    """An executor thread waiting for work: `_worker` with only waiting frames inside it."""
    for index, frame in enumerate(frames):
        if frame.startswith("_worker (") and "concurrent/futures/thread.py" in frame:
            return all(any(w in f for w in _WAITS) for f in frames[index:])
    return False


def layer_summary(raw_lines: Iterable[str]) -> tuple[Counter[str], int, int]:
    """(samples by layer, samples counted, idle executor samples left out) from py-spy's
    `--format raw` output: one `frame;frame;...;leaf count` line per distinct stack, where
    py-spy names a frame `function (file:line)` and may begin with a thread or process."""
    layers: Counter[str] = Counter()
    counted = idle = 0
    for line in raw_lines:
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if _idle_worker(frames):
            idle += count
            continue
        layers[layer_of(frames)] += count
        counted += count
    return layers, counted, idle
