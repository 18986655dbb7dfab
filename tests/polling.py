"""Waiting for another process's I/O (a broker delivery, a subscriber's commit) by polling with a deadline.

Tests never sleep for timers; when the thing awaited happens in a real server or another thread, they poll
for its visible effect and fail with what they were waiting for.
"""

from __future__ import annotations

import time
from collections.abc import Callable

DEADLINE_S = 20.0


def wait_for(predicate: Callable[[], object], what: str, *, deadline_s: float = DEADLINE_S) -> object:
    """The first truthy value of ``predicate``, polled every 50 ms; AssertionError naming ``what`` on timeout."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)  # polling for another process's I/O, not a timer under test
    raise AssertionError(f"timed out waiting for {what}")
