"""Benchmark wa-sessions against find, an equivalent find pipeline and a Node planner, on a
synthetic fleet.

    python -m bench.run                                   # 2,000 tenants x 500 files = 1,000,000
    python -m bench.run --sizes 10000,100000,1000000      # and how the cost grows

For each size, on the same tree in the same run (page cache warm, tree synced to disk first),
each command is timed as a whole process (fork to exit), `--runs` times after one warm-up, all
commands of a row interleaved (the order flips every round):

- `wa-sessions scan --json` against `find ROOT -mindepth 2 -maxdepth 2 -printf '%s %T@ %f\\n'`;
- `wa-sessions cleanup --dry-run --json` against the same find, and the Node planner beside it;
- a real `wa-sessions cleanup` against the equivalent pipeline (the ratio) and the bare find
  one-liner (bench/baselines.py), each run on a fresh copy of the tree (hard links: `cp -al`);
  the warm-up round checks that the pipeline leaves exactly the files wa-sessions leaves.

Start-up is timed on a root with one empty tenant. Peak memory is sampled over the whole process
tree (RSS summed over the processes, and PSS). Per-file cost is the median minus the median of
the same command on the one-empty-tenant root (timed in the same rounds), divided by the files.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import wa_sessions
from bench import baselines
from bench.baselines import ours
from bench.generate import generate
from bench.processes import Sample, interleaved, median_cpu, median_wall, timed
from bench.report import Comparison, SizeResult, Startup, as_json, report

SMALL_TREE_RUNS = 11  # runs on trees of 100,000 files or fewer (when --runs is 5 or more)
TINY_TREE_RUNS = 31  # and on trees of 10,000 files or fewer: their work is a few hundredths of a
# second next to the start-up, so their per-file cost needs many runs to stand out


@contextlib.contextmanager
def fresh_tree(workdir: Path, name: str, tenants: int, files_per_tenant: int, now: float) -> Iterator[Path]:
    """A generated tree, synced to disk so that no write-back runs during the measurements;
    removed afterwards."""
    root = workdir / name
    remove(root)
    generate(root, tenants, files_per_tenant, now=now)
    os.sync()
    try:
        yield root
    finally:
        remove(root)


@contextlib.contextmanager
def fresh_copy(pristine: Path, workdir: Path, name: str) -> Iterator[Path]:
    """A fresh copy of the pristine tree for one real cleanup: hard links (`cp -al`), made in
    seconds even at a million files. Every cleaner then unlinks links (the inodes live on in the
    pristine tree): the same work for all. Removed afterwards."""
    copy = workdir / name
    remove(copy)
    subprocess.run(["cp", "-al", str(pristine), str(copy)], check=True)
    os.sync()
    try:
        yield copy
    finally:
        remove(copy)


def remove(path: Path) -> None:
    if path.exists():
        subprocess.run(["rm", "-rf", "--", str(path)], check=True)


def _replace_root(command: list[str], root: Path, other: Path) -> list[str]:
    return [other.as_posix() if part == str(root) else part for part in command]


def compare_read_only(
    name: str, our_command: list[str], peers: dict[str, list[str]], root: Path, runs: int, empty_root: Path
) -> Comparison:
    """Time a read-only command of ours against its peers on the same tree, interleaved, with the
    same command on the one-empty-tenant root in every round (its start-up, taken off per file)."""
    comparison = Comparison(name, baseline=next(iter(peers)))
    for peer_command in peers.values():
        timed(peer_command)
    _, comparison.memory = timed(our_command, sample_memory=True)
    startup: list[Sample] = []
    commands = [(comparison.ours, our_command), (startup, _replace_root(our_command, root, empty_root))]
    for peer, peer_command in peers.items():
        commands.append((comparison.peers.setdefault(peer, []), peer_command))
    interleaved(commands, runs)
    comparison.ours_startup, comparison.ours_startup_cpu = median_wall(startup), median_cpu(startup)
    return comparison


def compare_cleanup(
    workdir: Path, pristine: Path, runs: int, empty_root: Path, jobs: int | None, checks: dict[str, Any]
) -> Comparison:
    """Time a real cleanup of ours against the equivalent pipeline and the bare one-liner, each
    run on a fresh copy. The warm-up round checks that the pipeline leaves the files we leave."""
    comparison = Comparison("cleanup", baseline="equivalent")
    cleaners: dict[str, Callable[[Path], list[str]]] = {
        "equivalent": baselines.equivalent_pipeline,
        "ours": lambda copy: ours("cleanup", "--root", str(copy), jobs=jobs),
        "bare": baselines.bare_one_liner,
    }
    empty_command = ours("cleanup", "--root", str(empty_root), jobs=jobs)
    startup: list[Sample] = []
    for run in range(runs + 1):  # run 0 is the warm-up and the check
        order = list(cleaners) if run % 2 == 0 else list(reversed(cleaners))
        for who in order:
            with fresh_copy(pristine, workdir, f"copy-{who}") as copy:
                if run == 0 and who == "ours":  # what a dry run says, the moment before the real run
                    checks["files_dry_run_would_delete"] = dry_run_deletions(copy, jobs)
                sample, memory = timed(cleaners[who](copy), sample_memory=run == 0 and who == "ours")
                if run == 0:
                    left = baselines.remaining_files(copy, workdir / f"left-{who}.txt")
                    checks[f"files_left_by_{who}"] = left
                    if who == "ours":
                        comparison.memory = memory
                elif who == "ours":
                    comparison.ours.append(sample)
                    startup.append(timed(empty_command)[0])  # next to the run it is taken off
                else:
                    comparison.peers.setdefault(who, []).append(sample)
    baselines.check_same_files(workdir / "left-ours.txt", workdir / "left-equivalent.txt")
    checks["equivalent_pipeline_leaves_the_same_files"] = True
    for who in cleaners:
        (workdir / f"left-{who}.txt").unlink()
    comparison.ours_startup, comparison.ours_startup_cpu = median_wall(startup), median_cpu(startup)
    return comparison


def _tenant_lines(command: list[str]) -> Iterator[dict[str, Any]]:
    """The tenants of a --json document, read line by line (one tenant per line): this process
    stays small, so the peak RSS its children inherit at fork (and report) stays theirs."""
    with subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith(b'{"company"'):
                yield json.loads(line.rstrip(b",\n"))
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}")


def _count_lines(command: list[str]) -> int:
    with subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL) as process:
        assert process.stdout is not None
        count = sum(1 for _ in process.stdout)
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}")
    return count


def check_outputs(root: Path, files: int, jobs: int | None, checks: dict[str, Any]) -> None:
    """One untimed run of each read-only command with its output read: the numbers must add up."""
    checks["files_generated"] = files
    checks["files_found_by_find"] = _count_lines(baselines.find_printf(root))
    scan_command = ours("scan", "--json", "--root", str(root), jobs=jobs)
    checks["files_seen_by_scan"] = sum(tenant["files"] for tenant in _tenant_lines(scan_command))
    checks["files_node_planner_would_delete"] = _count_lines(baselines.node_planner(root))


def dry_run_deletions(root: Path, jobs: int | None) -> int:
    command = ours("cleanup", "--dry-run", "--json", "--root", str(root), jobs=jobs)
    return sum(len(tenant["deleted"]) for tenant in _tenant_lines(command))


def measure_size(
    workdir: Path,
    tenants: int,
    files_per_tenant: int,
    runs: int,
    jobs: int | None,
    log: Callable[[str], None],
    also_jobs: Sequence[int] = (),
) -> SizeResult:
    files = tenants * files_per_tenant
    empty_root = make_empty_root(workdir)
    checks: dict[str, Any] = {}
    if files <= 100_000 and runs >= 5:  # a small tree's net time is small next to start-up noise
        runs = max(runs, TINY_TREE_RUNS if files <= 10_000 else SMALL_TREE_RUNS)
    log(f"{files:,} files: generating {tenants:,} tenants x {files_per_tenant} files")
    with fresh_tree(workdir, "tree", tenants, files_per_tenant, time.time()) as root:
        check_outputs(root, files, jobs, checks)
        find = {"find": baselines.find_printf(root)}
        log(f"{files:,} files: scan ({runs} runs)")
        scan_command = ours("scan", "--json", "--root", str(root), jobs=jobs)
        scan = compare_read_only("scan", scan_command, find, root, runs, empty_root)
        log(f"{files:,} files: cleanup --dry-run ({runs} runs)")
        dry_command = ours("cleanup", "--dry-run", "--json", "--root", str(root), jobs=jobs)
        dry_peers = {**find, "node": baselines.node_planner(root)}
        dry = compare_read_only("dry-run", dry_command, dry_peers, root, runs, empty_root)
        variants = []
        for other in also_jobs:
            log(f"{files:,} files: scan and cleanup --dry-run with --jobs {other}")
            for name, arguments in (
                ("scan", ["scan", "--json"]),
                ("dry-run", ["cleanup", "--dry-run", "--json"]),
            ):
                command = ours(*arguments, "--root", str(root), jobs=other)
                variant = compare_read_only(name, command, find, root, runs, empty_root)
                variant.variant = f"--jobs {other}"
                variants.append(variant)
        log(f"{files:,} files: real cleanup ({runs + 1} fresh copies for each cleaner)")
        real = compare_cleanup(workdir, root, runs, empty_root, jobs, checks)
    deleted = checks["files_generated"] - checks["files_left_by_ours"]
    checks["files_deleted_by_cleanup"] = deleted
    checks["dry_run_matches_cleanup"] = deleted == checks["files_dry_run_would_delete"]
    return SizeResult(tenants, files_per_tenant, files, [scan, dry, real], checks, variants, runs)


def make_empty_root(workdir: Path) -> Path:
    """A root with one empty tenant (a root with no tenant at all is an error: exit 2, SPEC §4)."""
    empty_root = workdir / "empty"
    (empty_root / "company_0").mkdir(parents=True, exist_ok=True)
    return empty_root


def measure_startup(workdir: Path, runs: int, jobs: int | None) -> Startup:
    """Each command on a root with one empty tenant, interleaved."""
    empty_root = make_empty_root(workdir)
    commands = {
        "scan --json": ours("scan", "--json", "--root", str(empty_root), jobs=jobs),
        "cleanup --dry-run --json": ours(
            "cleanup", "--dry-run", "--json", "--root", str(empty_root), jobs=jobs
        ),
        "cleanup": ours("cleanup", "--root", str(empty_root), jobs=jobs),
        "node planner": baselines.node_planner(empty_root),
        "find -printf": baselines.find_printf(empty_root),
    }
    startup = Startup({name: [] for name in commands})
    for command in commands.values():
        timed(command)
    interleaved([(startup.samples[name], command) for name, command in commands.items()], runs)
    return startup


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tenants", type=int, default=2000, help="tenants of the main tree (default 2000)")
    parser.add_argument("--files-per-tenant", type=int, default=500, help="files per tenant (default 500)")
    parser.add_argument(
        "--sizes",
        default="",
        help="comma-separated total file counts for the growth table, e.g. 10000,100000,1000000 "
        "(tenants = size / files-per-tenant); default: the main tree only",
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command (median; default 5)")
    parser.add_argument(
        "--jobs", type=int, default=None, help="pass --jobs N to wa-sessions (default: its own)"
    )
    parser.add_argument(
        "--also-jobs",
        default="",
        help="comma-separated --jobs values to time scan and cleanup --dry-run with too, on the largest tree",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="where the trees go (default: a temp dir)")
    parser.add_argument(
        "--json", type=Path, default=None, dest="json_path", help="also write the results here"
    )
    options = parser.parse_args(argv)
    if options.runs < 1 or options.files_per_tenant < 40 or options.tenants < 1:
        parser.error("--runs must be >= 1, --files-per-tenant >= 40, --tenants >= 1")
    if not shutil.which("node"):
        parser.error("node is needed for the Node planner peer (Debian: apt-get install nodejs)")

    sizes = [int(size) for size in options.sizes.split(",") if size.strip()] if options.sizes else []
    tenant_counts = sorted({max(size // options.files_per_tenant, 1) for size in sizes} | {options.tenants})
    workdir = Path(tempfile.mkdtemp(prefix="wa-sessions-bench-", dir=options.workdir))

    def log(message: str) -> None:
        sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")

    load_before = os.getloadavg()[0]
    # As `pip install` leaves it: a checkout run under PYTHONDONTWRITEBYTECODE=1 would compile
    # every module at every start (about 50 ms of start-up no installed copy pays).
    compileall.compile_dir(Path(wa_sessions.__file__).parent, quiet=1)
    try:
        log("start-up on a root with one empty tenant")
        startup = measure_startup(
            workdir, max(options.runs, SMALL_TREE_RUNS if options.runs >= 5 else 1), options.jobs
        )
        also_jobs = [int(value) for value in options.also_jobs.split(",") if value.strip()]
        results = [
            measure_size(
                workdir,
                tenants,
                options.files_per_tenant,
                options.runs,
                options.jobs,
                log,
                also_jobs if tenants == tenant_counts[-1] else (),
            )
            for tenants in tenant_counts
        ]
    finally:
        remove(workdir)
    text = report(results, startup, options.runs, (load_before, os.getloadavg()[0]))
    sys.stdout.write(text)
    if options.json_path is not None:
        document = {"report": text, "startup": startup.as_json(), "sizes": as_json(results)}
        options.json_path.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
