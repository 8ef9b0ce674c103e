"""Write a synthetic fleet fast: the Baileys-faithful tenants of `wa_sessions.demo`, written with
os.open/os.write/os.utime relative to a directory descriptor, tenants spread over processes."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sys
import time
from pathlib import Path

from wa_sessions.demo import tenant_files

FIRST_COMPANY = 100000
PRE_KEY_BATCHES = 3
# The default rules' ages (14 and 3 days): no file is written within two hours below or ten
# minutes above them, so that find's whole-minute `-mmin` and wa-sessions' own clock, a few
# seconds apart, judge every file alike for two hours after the tree is written (the benchmark
# checks that the equivalent find pipeline deletes the same files as wa-sessions).
RULE_AGES = (14 * 86400, 3 * 86400)
BELOW, ABOVE = 7200, 600
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


def tenant_name(index: int) -> str:
    return f"company_{FIRST_COMPANY + index}"


def clear_of_rule_ages(mtime: float, now: float) -> float:
    """`mtime`, moved older to ten minutes past a rule's age when it falls just around it."""
    for age in RULE_AGES:
        if age - BELOW < now - mtime < age + ABOVE:
            return now - age - ABOVE
    return mtime


def write_tenant(root: Path, index: int, files: int, seed: int, now: float) -> int:
    """Write tenant number `index` (the same files for the same seed and `now`); return its file count."""
    rng = random.Random(seed * 1_000_003 + index)
    folder = root / tenant_name(index)
    folder.mkdir()
    folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        written = 0
        for demo_file in tenant_files(rng, now, files, pre_key_batches=PRE_KEY_BATCHES):
            fd = os.open(demo_file.name, _CREATE, 0o600, dir_fd=folder_fd)
            try:
                os.write(fd, demo_file.content.encode())
                mtime_ns = int(clear_of_rule_ages(demo_file.mtime, now) * 1e9)
                os.utime(fd, ns=(mtime_ns, mtime_ns))
            finally:
                os.close(fd)
            written += 1
        return written
    finally:
        os.close(folder_fd)


def _write_range(arguments: tuple[str, range, int, int, float]) -> int:
    root, indexes, files, seed, now = arguments
    return sum(write_tenant(Path(root), index, files, seed, now) for index in indexes)


def generate(
    root: Path, tenants: int, files_per_tenant: int, *, seed: int = 1, now: float | None = None, jobs: int = 0
) -> int:
    """Create `root` with `tenants` company folders of `files_per_tenant` files; return the file count.

    The same seed and `now` give the same tree. `jobs` processes write it (0: one per core).
    """
    now = time.time() if now is None else now
    root.mkdir(parents=True)
    jobs = jobs or os.cpu_count() or 1
    chunks = [(str(root), range(start, tenants, jobs), files_per_tenant, seed, now) for start in range(jobs)]
    if jobs == 1:
        return _write_range(chunks[0])
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        return sum(pool.map(_write_range, chunks))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=Path, help="sessions root to create (must not exist)")
    parser.add_argument("--tenants", type=int, default=2000)
    parser.add_argument("--files-per-tenant", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args(argv)
    started = time.perf_counter()
    count = generate(options.root, options.tenants, options.files_per_tenant, seed=options.seed)
    sys.stdout.write(f"wrote {count:,} files in {time.perf_counter() - started:.1f} s under {options.root}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
