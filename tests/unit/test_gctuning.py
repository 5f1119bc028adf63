"""GC tuning after start-up: only in a process `serve` started (its heap frozen first)."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys

from gateway.settings import RuntimeSettings
from gateway.web import gctuning

_SERVED = """
import asyncio, gc
from gateway.settings import RuntimeSettings
from gateway.web import gctuning
gctuning.WARM_UP_SECONDS = (0.01,)
gc.freeze()  # as `serve` does before the app exists
async def main():
    gctuning.tune_gc_after_startup(RuntimeSettings(gc_gen0_threshold=12_345))
    frozen = gc.get_freeze_count()
    junk = [[i] for i in range(1000)]
    await asyncio.sleep(0.2)
    print(gc.get_threshold()[0], gc.get_freeze_count() - frozen >= 900)  # junk frozen too
asyncio.run(main())
"""


def test_an_app_inside_another_program_leaves_its_collector_alone():
    assert gc.get_freeze_count() == 0  # nothing froze the test process's heap
    threshold = gc.get_threshold()
    asyncio.run(_tune())
    assert gc.get_threshold() == threshold
    assert gc.get_freeze_count() == 0


async def _tune() -> None:
    gctuning.tune_gc_after_startup(RuntimeSettings(gc_gen0_threshold=12_345))


def test_a_served_process_is_frozen_after_start_up_and_warm_up_with_a_larger_young_generation():
    result = subprocess.run([sys.executable, "-c", _SERVED], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.split() == ["12345", "True"]
