"""One conformance check's outcome, and the checks' stable names in the order they run."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CHECK_NAMES", "CheckResult", "failed", "not_run", "passed"]

CHECK_NAMES = ("manifest", "health", "known_child", "unknown_child", "search",
               "shielding_explicit", "consent_explicit", "latency")
"""Stable names: councils' scripts and our documentation refer to them."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Whether check `name` passed, and why, in one line free of any child's data."""

    name: str
    passed: bool
    reason: str

    def line(self) -> str:
        """``PASS <name>: <reason>`` or ``FAIL <name>: <reason>``, always one line."""
        reason = " ".join(self.reason.splitlines())
        return f"{'PASS' if self.passed else 'FAIL'} {self.name}: {reason}"


def passed(name: str, reason: str) -> CheckResult:
    return CheckResult(name, True, reason)


def failed(name: str, reason: str) -> CheckResult:
    return CheckResult(name, False, reason)


def not_run(name: str, because: str) -> CheckResult:
    """Check `name` could not run because check `because` failed: itself a failure."""
    return CheckResult(name, False, f"not run: {because} failed")
