"""`audit_commit`: each commit timed once, by outcome; an error passes through unchanged."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from gateway.telemetry.audit import audit_commit

_COUNT = "contactpoint_audit_commit_duration_seconds_count"
_SUM = "contactpoint_audit_commit_duration_seconds_sum"


def _observed(outcome: str) -> tuple[float, float]:
    labels = {"outcome": outcome}
    return (REGISTRY.get_sample_value(_COUNT, labels) or 0.0,
            REGISTRY.get_sample_value(_SUM, labels) or 0.0)


async def test_a_commit_is_timed_under_ok_and_a_failure_under_failed():
    ok, failed = _observed("ok"), _observed("failed")
    with audit_commit(3):
        await asyncio.sleep(0.02)
    with pytest.raises(OSError, match="disk full"), audit_commit(1):
        raise OSError("disk full")
    with pytest.raises(asyncio.CancelledError), audit_commit(1):
        raise asyncio.CancelledError
    ok_after, failed_after = _observed("ok"), _observed("failed")
    assert ok_after[0] - ok[0] == 1
    assert ok_after[1] - ok[1] >= 0.02  # the await inside was timed
    assert failed_after[0] - failed[0] == 2
