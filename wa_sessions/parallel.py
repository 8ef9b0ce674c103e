"""Work on tenants in parallel processes, results in order: `--jobs N` of scan and cleanup.

Tenants are independent (one folder, one lock each), so a fleet splits across processes with no
coordination. Workers are forked: they inherit the open root descriptor, the settings and the
function to run, so only tenants go to them and only results come back, in the order given.

A worker whose parent died (the OOM killer, a `kill -9` of the parent alone) goes quietly: it
finishes the tenant it is on (under that tenant's lock), then starts no other one; the write of a
result to a parent that is gone raises BrokenPipeError, which ends the worker with nothing on the
stderr it shares with the parent (the cron mail, the journal). Not SIGPIPE: a worker killed by it
inside the result queue's write lock would leave that lock taken for ever, and the other worker
waiting on it would never end.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# Below this many tenants a second process costs more than it saves: forking and shipping
# results back is ~10 ms, a tenant of a few hundred files ~1-2 ms.
MIN_TENANTS_PER_JOB = 32

_function: Callable[[Any], Any] | None = None
_parent: int | None = None  # in a worker: the pid of the process that forked it


def available_cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def effective_jobs(jobs: int, items: int) -> int:
    """Given `--jobs` (0: automatic) and the number of tenants, return how many processes to use:
    automatic is one per CPU, as long as each gets MIN_TENANTS_PER_JOB tenants."""
    if jobs < 0:
        raise ValueError(f"jobs must be 0 (automatic) or more, got {jobs}")
    if jobs == 0:
        jobs = min(available_cpus(), items // MIN_TENANTS_PER_JOB)
    return max(1, min(jobs, items))


class _QuietWhenOrphaned:
    """A worker's stderr: written through while the parent lives; once it is gone, what is left
    to say is the BrokenPipeError traceback of a result nobody will read, so nothing is."""

    def __init__(self, stream: Any, parent: int):
        self._stream = stream
        self._parent = parent

    def write(self, text: str) -> int:
        if os.getppid() != self._parent:
            return len(text)
        return int(self._stream.write(text))

    def flush(self) -> None:
        if os.getppid() == self._parent:
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _install(function: Callable[[Any], Any], parent: int) -> None:
    """The initializer of a worker."""
    global _function, _parent
    _function = function
    _parent = parent
    sys.stderr = _QuietWhenOrphaned(sys.stderr, parent)
    # Ctrl-C on a terminal signals the whole process group: the parent alone handles it (one
    # "interrupted" line, then the pool's terminate() ends the workers with SIGTERM), instead of
    # a KeyboardInterrupt traceback from every worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _call(item: Any) -> Any:
    assert _function is not None
    if os.getppid() != _parent:
        # orphaned (the parent was killed): nobody will read this result, start no new tenant
        os._exit(1)
    return _function(item)


def forks(jobs: int, items: Sequence[Any]) -> bool:
    """Whether ordered_map runs these items in worker processes (else in this one)."""
    return jobs > 1 and len(items) >= 2


def ordered_map(function: Callable[[Item], Result], items: Sequence[Item], jobs: int) -> Iterator[Result]:
    """Yield `function(item)` for each item, in the order of `items`, computed in `jobs` forked
    processes (in this one when `jobs` is 1). `function` runs in the workers and may be a closure:
    it is inherited, not pickled; items and results are pickled. An exception in a worker is
    raised here, at its item."""
    if not forks(jobs, items):
        yield from map(function, items)
        return
    # Imported here: most runs use one process, and should not pay for multiprocessing.
    import multiprocessing

    # Small chunks keep the workers evenly loaded and the results flowing in order.
    chunk = max(1, min(16, len(items) // (jobs * 8)))
    # What exists now is inherited, never collected in a worker: a collection there would write
    # to every page of it (copy-on-write faults: the second process cost a third more CPU).
    gc.freeze()
    with multiprocessing.get_context("fork").Pool(
        jobs, initializer=_install, initargs=(function, os.getpid())
    ) as pool:
        yield from pool.imap(_call, items, chunksize=chunk)
