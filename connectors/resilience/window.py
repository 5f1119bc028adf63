"""A count over the last few seconds, in one-second buckets: cheap to add to, exact enough."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["RollingCount"]


class RollingCount:
    """Events of the last `seconds` seconds (whole seconds; the current one counts in full).

    `add` is O(1); `total` is O(`seconds`), so read it on the rare path (a retry, a
    readiness probe, a state change), not on every call.
    """

    def __init__(self, seconds: int, clock: Callable[[], float] = time.monotonic) -> None:
        if seconds < 1:
            raise ValueError("a rolling count needs at least one second")
        self._seconds = seconds
        self._clock = clock
        self._counts = [0] * seconds
        self._stamps = [-1] * seconds
        self._now = -1
        """The second of the last `add`, whose bucket is `_slot` (a second has one bucket)."""
        self._slot = 0

    def add(self, count: int = 1) -> None:
        now = int(self._clock())
        if now != self._now:
            slot = self._slot = now % self._seconds
            self._now = now
            if self._stamps[slot] != now:
                self._stamps[slot] = now
                self._counts[slot] = 0
        self._counts[self._slot] += count

    def total(self) -> int:
        oldest = int(self._clock()) - self._seconds
        return sum(count for count, stamp in zip(self._counts, self._stamps, strict=True)
                   if stamp > oldest)
