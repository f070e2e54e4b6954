"""Polling helper for the robot tests (beside them: pytest puts tests/robot on the path)."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(cond: Callable[[], object], timeout_s: float, poll_s: float = 0.005) -> bool:
    """True as soon as ``cond()`` is truthy; False after ``timeout_s`` of wall-clock time."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(poll_s)
    return False
