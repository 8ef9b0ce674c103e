"""Waiting for a condition that nothing signals (a file appearing or vanishing, a process group
ending). Where a real synchronisation exists (a pipe the child writes to, proc.wait(timeout=),
select), use it instead."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(condition: Callable[[], object], timeout: float, what: str, *, interval: float = 0.01) -> None:
    """Return as soon as `condition()` is true; raise AssertionError naming `what` after `timeout` s.

    `interval` is the pause between two checks (0 for a test that must react within microseconds).
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)
