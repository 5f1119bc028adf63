"""Logging that carries no personal data: exceptions are summarised without their message.

An exception's message may quote data (a KeyError names the missing key, a
ValueError the bad value), so logs get the type and the code locations only.
"""

from __future__ import annotations

import logging
import traceback

__all__ = ["configure_logging", "exception_summary"]


def exception_summary(exc: BaseException, depth: int = 6) -> str:
    """`TypeName at file:line (function) <- ...`, innermost first, no message."""
    frames = traceback.extract_tb(exc.__traceback__)[-depth:]
    where = " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} ({f.name})"
                        for f in reversed(frames))
    return f"{type(exc).__name__} at {where or 'unknown'}"


def configure_logging(level: str = "INFO") -> None:
    """One line per event on stderr; used by the CLI (tests keep pytest's handlers)."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
