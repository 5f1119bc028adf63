"""The garbage collector tuned for serving, once per process: `tune_gc_after_startup`.

Python's cyclic collector runs after every 700 net allocations of tracked objects
and then walks every object of the young generation; older ones are walked by
the less frequent collections of generations 1 and 2, which count young ones.
A gateway process holds a large, long-lived heap (the schema, the connectors,
the policy tables, the caches) and makes many short-lived objects per request,
so by default it spends time walking the heap it keeps and pauses often. So:

- `gc.freeze()` after start-up (the app's resources open) and again after a
  warm-up (caches and compiled documents in place) moves every object then
  alive out of the collector's sight: no collection walks them again;
- the young generation's threshold is raised (`[runtime] gc_gen0_threshold`):
  fewer collections, each a little longer, which is what the tail latency
  shows (measure p99, not only the mean).

Each freeze is preceded by a full collection, so no garbage is frozen; an
object frozen stays in memory while anything refers to it, as before, and is
never collected as part of a cycle (a one-off, bounded cost).
"""

from __future__ import annotations

import asyncio
import gc
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.settings import RuntimeSettings

__all__ = ["WARM_UP_SECONDS", "freeze_startup", "tune_gc_after_startup"]

WARM_UP_SECONDS = (5.0, 60.0)
"""Seconds after start-up at which what is alive is frozen again (the warm-up)."""
_OLDER_THRESHOLDS = (20, 20)
"""Generations 1 and 2: collected after 20 collections of the one below (default 10)."""

_tuned = False


def _freeze() -> None:
    gc.collect()
    gc.freeze()


def freeze_startup() -> None:
    """Freeze what importing and configuring made, before the app exists (`serve` only)."""
    _freeze()


def tune_gc_after_startup(settings: RuntimeSettings) -> None:
    """Freeze what start-up made, raise the young generation's threshold, and freeze again
    after each of `WARM_UP_SECONDS` (on the running loop).

    Only in a process that `contactpoint serve` started, which freezes the start-up heap
    before the app exists (`freeze_startup`): an app run inside another program (the
    tests, an embedding) leaves that program's collector alone. A frozen object is
    invisible to `gc.get_referrers`, which such a program may rely on (Hypothesis does).
    Once per process.
    """
    global _tuned  # the collector is one per process
    if _tuned or gc.get_freeze_count() == 0:
        return
    _tuned = True
    _freeze()
    gc.set_threshold(settings.gc_gen0_threshold, *_OLDER_THRESHOLDS)
    loop = asyncio.get_running_loop()
    for delay in WARM_UP_SECONDS:
        loop.call_later(delay, _freeze)
