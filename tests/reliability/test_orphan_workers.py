"""`--jobs N` forks workers. When only the parent is killed (the OOM killer, a `kill -9` of the
pid cron logged), the orphaned workers must go quietly: no `BrokenPipeError` traceback on the
stderr they share with the parent (the cron mail, the journal), however far they had got, and
they must end: a worker that died inside the result queue's write lock would leave its sibling
waiting on that lock for ever (few big tenants: a result is written after every tenant).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import DAY, clean_env, command

WAIT = 60.0


def build_tree(root: Path, tenants: int, sessions: int) -> None:
    """`tenants` folders of `sessions` old sessions each (what the dry run reports, tenant by
    tenant)."""
    old = time.time() - 30 * DAY
    for tenant in range(tenants):
        folder = root / f"company_{100000 + tenant}"
        folder.mkdir(parents=True)
        (folder / "creds.json").write_text(
            '{"nextPreKeyId": 3, "me": {"id": "15550000000:1@s.whatsapp.net"}}'
        )
        for session in range(sessions):
            fd = os.open(folder / f"session-1666{session:07d}.0.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            try:
                os.write(fd, b"{}")
                os.utime(fd, (old, old))
            finally:
                os.close(fd)


def children_of(pid: int) -> list[int]:
    """The pids whose parent is `pid` (from /proc/*/stat: the field after the command name)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry))
    return found


@contextlib.contextmanager
def pidfds(pids: list[int]) -> Iterator[list[int]]:
    """A pidfd per process (readable once it has ended), pinned now so that no recycled pid can
    stand in for it later."""
    fds = [os.pidfd_open(pid) for pid in pids]
    try:
        yield fds
    finally:
        for fd in fds:  # a test that failed leaves nothing behind
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            os.close(fd)


def wait_until_all_ended(fds: list[int], timeout: float) -> list[int]:
    """Wait (on the pidfds, no polling) until every process has ended; return those still running."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    running = set(fds)
    deadline = time.monotonic() + timeout
    while running and (left := deadline - time.monotonic()) > 0:
        for fd, _event in poller.poll(left * 1000):
            running.discard(fd)
            poller.unregister(fd)
    return sorted(running)


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs os.pidfd_open (Linux >= 5.3)")
@pytest.mark.parametrize(
    ("tenants", "sessions"), [(300, 60), (6, 6000)], ids=["many-small-tenants", "few-big-tenants"]
)
def test_workers_orphaned_by_a_killed_parent_exit_without_a_traceback(
    tmp_path: Path, tenants: int, sessions: int
) -> None:
    root = tmp_path / "root"
    build_tree(root, tenants, sessions)
    stderr_path = tmp_path / "stderr"

    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            command("cleanup", "--dry-run", "--json", "--jobs", "2", "--root", root),
            env=clean_env({"PYTHONUNBUFFERED": "1"}),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    try:
        assert process.stdout is not None
        # --json writes each tenant on its line as its worker sends it back: at the first one the
        # workers are running, with most of the fleet still to do
        line = b""
        while b'"company"' not in line:
            ready, _, _ = select.select([process.stdout], [], [], WAIT)
            assert ready, f"no tenant from the dry run within {WAIT:.0f}s"
            line = process.stdout.readline()
            assert line, "the dry run ended before writing a tenant"
        workers = children_of(process.pid)
        assert len(workers) == 2, f"expected 2 workers of {process.pid}, found {workers}"
        with pidfds(workers) as fds:
            process.send_signal(signal.SIGKILL)  # the parent only: the workers are orphaned
            process.wait()
            still_running = wait_until_all_ended(fds, WAIT)
        assert not still_running, f"orphaned workers still running {WAIT:.0f}s after their parent died"
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()

    assert process.returncode == -signal.SIGKILL
    errors = stderr_path.read_text(errors="backslashreplace")
    for marker in ("Traceback", "BrokenPipeError", "Error", "Process ForkPoolWorker"):
        assert marker not in errors, f"the orphaned workers wrote on stderr:\n{errors[-4000:]}"
