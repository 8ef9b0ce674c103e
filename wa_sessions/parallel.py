"""Work on tenants in parallel processes, results in order: `--jobs N` of scan and cleanup.

Tenants are independent (one folder, one lock each), so a fleet splits across processes with no
coordination. Workers are forked: they inherit the open root descriptor, the settings and the
function to run, so only tenants go to them and only results come back, in the order given.

A worker whose parent died (the OOM killer, a `kill -9` of the parent alone) goes quietly: it
finishes the tenant it is on (under that tenant's lock), then starts no other one, and the write
of a result to a parent that is gone ends it as SIGPIPE ends a Unix filter, instead of a
BrokenPipeError traceback on the stderr it shares with the parent (the cron mail, the journal).
"""

from __future__ import annotations

import os
import signal
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


def _install(function: Callable[[Any], Any], parent: int) -> None:
    """The initializer of a worker."""
    global _function, _parent
    _function = function
    _parent = parent
    # Python ignores SIGPIPE, so that writing to a pipe nobody reads raises BrokenPipeError; a
    # worker's only pipe reader is its parent, and once the parent is gone there is nobody to
    # tell: die of SIGPIPE, silently, as Unix filters do.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
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


def ordered_map(function: Callable[[Item], Result], items: Sequence[Item], jobs: int) -> Iterator[Result]:
    """Yield `function(item)` for each item, in the order of `items`, computed in `jobs` forked
    processes (in this one when `jobs` is 1). `function` runs in the workers and may be a closure:
    it is inherited, not pickled; items and results are pickled. An exception in a worker is
    raised here, at its item."""
    if jobs <= 1 or len(items) < 2:
        yield from map(function, items)
        return
    # Imported here: most runs use one process, and should not pay for multiprocessing.
    import multiprocessing

    # Small chunks keep the workers evenly loaded and the results flowing in order.
    chunk = max(1, min(16, len(items) // (jobs * 8)))
    with multiprocessing.get_context("fork").Pool(
        jobs, initializer=_install, initargs=(function, os.getpid())
    ) as pool:
        yield from pool.imap(_call, items, chunksize=chunk)
