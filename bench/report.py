"""Benchmark wa-sessions against GNU find on a synthetic fleet.

    python -m bench.run                                   # 2,000 tenants x 500 files = 1,000,000
    python -m bench.run --sizes 10000,100000,1000000      # and how the cost grows

For each size, on the same tree in the same run (page cache warm, tree synced to disk first),
each command is timed as a whole process (fork to exit), `--runs` times after one warm-up, find
and wa-sessions alternating:

- `wa-sessions scan --json` against `find ROOT -mindepth 2 -maxdepth 2 -printf '%s %T@ %f\\n'`;
- `wa-sessions cleanup --dry-run --json` against the same find;
- a real `wa-sessions cleanup` against the find one-liners a user would write instead, each run on
  a fresh copy of the tree (hard links: `cp -al`).

It prints the medians, the ratios (ours / find), peak memory and files per second as Markdown
tables, and with `--json FILE` writes them as JSON too. Per-file cost is the median minus the
median of the same command on a root with one empty tenant (start-up, timed in the same rounds),
divided by the files.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.generate import generate

FIND_PRINTF = "%s %T@ %f\\n"

# What a user would write instead of `wa-sessions cleanup`: the rules of SPEC §2 as find
# one-liners, and the pre-key cap as `ls | sort -V | head -n -50 | xargs rm` per tenant.
FIND_CLEANUP = r"""
root="$1"
find "$root" -mindepth 2 -maxdepth 2 -type f -name 'session-*.json' -mtime +14 -delete
find "$root" -mindepth 2 -maxdepth 2 -type f -name 'sender-key-*' ! -name 'sender-key-memory-*' -mtime +3 -delete
for dir in "$root"/company_*/; do
  (cd "$dir" && ls | grep '^pre-key-' | sort -V | head -n -50 | xargs -r rm -f --)
done
"""

TARGETS = {"scan": 1.5, "dry-run": 1.0, "cleanup": 1.2}
GROWTH_LIMIT = 1.25
SMALL_TREE_RUNS = 11  # runs on trees of 100,000 files or fewer (when --runs is 5 or more)
TINY_TREE_RUNS = 31  # and on trees of 10,000 files or fewer: their work is a few hundredths of a
# second next to 0.35 s of start-up, so their per-file cost needs many runs to stand out
RSS_LIMIT_MB = 100


@dataclass(slots=True)
class Sample:
    """One timed process: wall seconds, CPU seconds, peak RSS of its largest process (KB)."""

    wall: float
    cpu: float
    max_rss_kb: int


@dataclass(slots=True)
class Comparison:
    """One command of ours against its find counterpart on one tree."""

    name: str
    variant: str = ""  # e.g. "--jobs 1": the same command with other options
    ours: list[Sample] = field(default_factory=list)
    find: list[Sample] = field(default_factory=list)
    ours_startup: float = 0.0
    ours_startup_cpu: float = 0.0
    peak_pss_mb: float = 0.0

    @property
    def ours_median(self) -> float:
        return statistics.median(sample.wall for sample in self.ours)

    @property
    def find_median(self) -> float:
        return statistics.median(sample.wall for sample in self.find)

    @property
    def ratio(self) -> float:
        return self.ours_median / self.find_median

    @property
    def ours_cpu(self) -> float:
        return statistics.median(sample.cpu for sample in self.ours)

    @property
    def find_cpu(self) -> float:
        return statistics.median(sample.cpu for sample in self.find)

    @property
    def max_rss_mb(self) -> float:
        return max(sample.max_rss_kb for sample in self.ours) / 1024


@dataclass(slots=True)
class SizeResult:
    tenants: int
    files_per_tenant: int
    files: int
    comparisons: list[Comparison]
    checks: dict[str, Any]
    variants: list[Comparison] = field(default_factory=list)


# ---------------------------------------------------------------- processes


def _tree_pss_kb(pid: int) -> int:
    """PSS of a process and its descendants (shared pages counted once), in KB; 0 once it is gone."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{current}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                children = Path(f"/proc/{current}/task/{task}/children").read_text().split()
                pending.extend(int(child) for child in children)
    return total


def timed(
    argv: Sequence[str], *, stdout: Any = subprocess.DEVNULL, sample_memory: bool = False
) -> tuple[Sample, int]:
    """Run a command as a whole process; return its Sample and the peak PSS of its process tree
    (KB, sampled every 20 ms, only when `sample_memory`). Raise if it fails."""
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.02):
                peak[0] = max(peak[0], _tree_pss_kb(process.pid))

        sampler = threading.Thread(target=sample, daemon=True) if sample_memory else None
        if sampler:
            sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        done.set()
        if sampler:
            sampler.join()
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            stderr.seek(0)
            message = stderr.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(argv)} exited {process.returncode}: {message}")
    sample_ = Sample(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)
    return sample_, peak[0]


def ours(*arguments: str, jobs: int | None) -> list[str]:
    command = [sys.executable, "-m", "wa_sessions", *arguments]
    if jobs is not None:
        command += ["--jobs", str(jobs)]
    return command


def find_printf(root: Path) -> list[str]:
    return ["find", str(root), "-mindepth", "2", "-maxdepth", "2", "-printf", FIND_PRINTF]


def find_cleanup(root: Path) -> list[str]:
    return ["sh", "-c", FIND_CLEANUP, "find-cleanup", str(root)]


# ---------------------------------------------------------------- trees


@contextlib.contextmanager
def fresh_tree(workdir: Path, name: str, tenants: int, files_per_tenant: int, now: float) -> Iterator[Path]:
    """A generated tree, synced to disk so that no write-back runs during the measurements;
    removed afterwards."""
    root = workdir / name
    if root.exists():
        shutil.rmtree(root)
    generate(root, tenants, files_per_tenant, now=now)
    os.sync()
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def fresh_copy(pristine: Path, workdir: Path, name: str) -> Iterator[Path]:
    """A fresh copy of the pristine tree for one real cleanup: hard links (`cp -al`), made in
    seconds even at a million files. Both cleaners then unlink links (the inodes live on in the
    pristine tree): the same work for find and for wa-sessions. Removed afterwards."""
    copy = workdir / name
    if copy.exists():
        shutil.rmtree(copy)
    subprocess.run(["cp", "-al", str(pristine), str(copy)], check=True)
    os.sync()
    try:
        yield copy
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def count_files(root: Path) -> int:
    return sum(
        1
        for tenant in os.scandir(root)
        if tenant.is_dir(follow_symlinks=False) and not tenant.name.startswith(".")
        for entry in os.scandir(tenant.path)
        if not entry.name.startswith(".")
    )


# ---------------------------------------------------------------- measurements


def compare_read_only(
    name: str, our_command: list[str], root: Path, runs: int, empty_root: Path, jobs: int | None
) -> Comparison:
    """Time a read-only command of ours against find's printf on the same tree, alternating."""
    comparison = Comparison(name)
    find_command = find_printf(root)
    empty_command = [empty_root.as_posix() if part == str(root) else part for part in our_command]
    timed(find_command)
    _, comparison_peak = timed(our_command, sample_memory=True)
    comparison.peak_pss_mb = comparison_peak / 1024
    startup: list[Sample] = []
    for run in range(runs):
        # the start-up run (the same command on a root with one empty tenant) in every round, next to the runs it
        # is taken off: the machine's speed drifts over minutes, and must drift for both alike
        rounds = [(comparison.find, find_command), (comparison.ours, our_command), (startup, empty_command)]
        for target, command in rounds if run % 2 == 0 else reversed(rounds):
            target.append(timed(command)[0])
    comparison.ours_startup = statistics.median(sample.wall for sample in startup)
    comparison.ours_startup_cpu = statistics.median(sample.cpu for sample in startup)
    return comparison


def compare_cleanup(
    workdir: Path,
    pristine: Path,
    runs: int,
    empty_root: Path,
    jobs: int | None,
    checks: dict[str, Any],
) -> Comparison:
    """Time a real cleanup of ours against the find one-liners, each run on a fresh copy."""
    comparison = Comparison("cleanup")
    empty_command = ours("cleanup", "--root", str(empty_root), jobs=jobs)
    startup: list[Sample] = []
    for run in range(runs + 1):  # run 0 is the warm-up
        order = ["find", "ours"] if run % 2 == 0 else ["ours", "find"]
        for who in order:
            with fresh_copy(pristine, workdir, f"copy-{who}") as copy:
                if who == "find":
                    sample, _ = timed(find_cleanup(copy))
                    if run == 0:
                        checks["files_left_by_find_cleanup"] = count_files(copy)
                    else:
                        comparison.find.append(sample)
                else:
                    if run == 0:  # what a dry run says, the moment before the real run
                        checks["files_dry_run_would_delete"] = dry_run_deletions(copy, jobs)
                    command = ours("cleanup", "--root", str(copy), jobs=jobs)
                    sample, peak = timed(command, sample_memory=run == 0)
                    if run == 0:
                        comparison.peak_pss_mb = peak / 1024
                        checks["files_left_by_cleanup"] = count_files(copy)
                    else:
                        comparison.ours.append(sample)
                        startup.append(timed(empty_command)[0])  # next to the run it is taken off
    comparison.ours_startup = statistics.median(sample.wall for sample in startup)
    comparison.ours_startup_cpu = statistics.median(sample.cpu for sample in startup)
    return comparison


def _count_lines(command: list[str]) -> int:
    with subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL) as process:
        assert process.stdout is not None
        count = sum(1 for _ in process.stdout)
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}")
    return count


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


def check_outputs(root: Path, files: int, jobs: int | None, checks: dict[str, Any]) -> None:
    """One untimed run of each read-only command with its output read: the numbers must add up."""
    checks["files_generated"] = files
    checks["files_found_by_find"] = _count_lines(find_printf(root))
    scan_command = ours("scan", "--json", "--root", str(root), jobs=jobs)
    checks["files_seen_by_scan"] = sum(tenant["files"] for tenant in _tenant_lines(scan_command))


def dry_run_deletions(root: Path, jobs: int | None) -> int:
    command = ours("cleanup", "--dry-run", "--json", "--root", str(root), jobs=jobs)
    return sum(len(tenant["deleted"]) for tenant in _tenant_lines(command))


def measure_size(
    workdir: Path,
    tenants: int,
    files_per_tenant: int,
    runs: int,
    jobs: int | None,
    log: Any,
    also_jobs: Sequence[int] = (),
) -> SizeResult:
    now = time.time()
    files = tenants * files_per_tenant
    empty_root = workdir / "empty"
    # one empty tenant: a root with no tenant at all is an error (exit 2, SPEC §4)
    (empty_root / "company_0").mkdir(parents=True, exist_ok=True)
    checks: dict[str, Any] = {}
    if files <= 100_000 and runs >= 5:  # a small tree's net time is small next to start-up noise
        runs = max(runs, TINY_TREE_RUNS if files <= 10_000 else SMALL_TREE_RUNS)
    log(f"{files:,} files: generating {tenants:,} tenants x {files_per_tenant} files")
    with fresh_tree(workdir, "tree", tenants, files_per_tenant, now) as root:
        check_outputs(root, files, jobs, checks)
        log(f"{files:,} files: scan")
        scan = compare_read_only(
            "scan", ours("scan", "--json", "--root", str(root), jobs=jobs), root, runs, empty_root, jobs
        )
        log(f"{files:,} files: cleanup --dry-run")
        dry = compare_read_only(
            "dry-run",
            ours("cleanup", "--dry-run", "--json", "--root", str(root), jobs=jobs),
            root,
            runs,
            empty_root,
            jobs,
        )
        variants = []
        for other in also_jobs:
            log(f"{files:,} files: scan and cleanup --dry-run with --jobs {other}")
            for name, arguments in (
                ("scan", ["scan", "--json"]),
                ("dry-run", ["cleanup", "--dry-run", "--json"]),
            ):
                command = ours(*arguments, "--root", str(root), jobs=other)
                variant = compare_read_only(name, command, root, runs, empty_root, other)
                variant.variant = f"--jobs {other}"
                variants.append(variant)
        log(f"{files:,} files: real cleanup ({runs + 1} fresh copies each)")
        real = compare_cleanup(workdir, root, runs, empty_root, jobs, checks)
    # Files keep ageing between the two runs (a few seconds): a handful may cross 3 or 14 days.
    deleted = checks["files_generated"] - checks["files_left_by_cleanup"]
    checks["files_deleted_by_cleanup"] = deleted
    checks["dry_run_matches_cleanup"] = (
        0 <= deleted - checks["files_dry_run_would_delete"] <= files // 10_000 + 2
    )
    return SizeResult(tenants, files_per_tenant, files, [scan, dry, real], checks, variants)


# ---------------------------------------------------------------- report


COMMANDS = {
    "scan": ("`scan --json`", "`find -printf '%s %T@ %f\\n'`"),
    "dry-run": ("`cleanup --dry-run --json`", "`find -printf '%s %T@ %f\\n'`"),
    "cleanup": (
        "`cleanup` (real)",
        "find `-delete` one-liners + `ls \\| sort -V \\| head -n -50 \\| xargs rm`",
    ),
}


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    find_version = subprocess.run(["find", "--version"], capture_output=True, text=True).stdout.splitlines()[
        0
    ]
    ours_version = subprocess.run(
        [sys.executable, "-m", "wa_sessions", "--version"], capture_output=True, text=True
    ).stdout.strip()
    return (
        f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}, Python {platform.python_version()}, "
        f"{find_version}, {ours_version}"
    )


def per_file_us(comparison: Comparison, files: int) -> float:
    """Wall time per file, start-up (the same command on a root with one empty tenant) taken off."""
    return max(comparison.ours_median - comparison.ours_startup, 0.0) / files * 1e6


def per_file_cpu_us(comparison: Comparison, files: int) -> float:
    """CPU time (all processes, user + system) per file, start-up taken off: the cost, whatever
    the parallelism and whatever else runs on the machine."""
    return max(comparison.ours_cpu - comparison.ours_startup_cpu, 0.0) / files * 1e6


def main_table(result: SizeResult) -> list[str]:
    lines = [
        "| command | ours (median s) | find (median s) | ratio ours/find | target | CPU s ours / find | peak RSS (largest process) | peak PSS (all processes) | files/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for comparison in [*result.comparisons, *result.variants]:
        ours_name, find_name = COMMANDS[comparison.name]
        if comparison.variant:
            ours_name = f"{ours_name[:-1]} {comparison.variant}`"
        target = TARGETS[comparison.name]
        verdict = "ok" if comparison.ratio <= target else "MISSED"
        lines.append(
            f"| {ours_name} vs {find_name} | {comparison.ours_median:.2f} | {comparison.find_median:.2f} | "
            f"**{comparison.ratio:.2f}x** | <= {target}x {verdict} | {comparison.ours_cpu:.1f} / {comparison.find_cpu:.1f} | "
            f"{comparison.max_rss_mb:.0f} MB | {comparison.peak_pss_mb:.0f} MB | "
            f"{result.files / comparison.ours_median:,.0f} |"
        )
    return lines


def growth_table(results: Sequence[SizeResult]) -> list[str]:
    lines = [
        "| files | scan s (ratio) | scan CPU µs/file | dry-run s (ratio) | dry-run CPU µs/file | cleanup s (ratio) | cleanup CPU µs/file |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        cells = []
        for comparison in result.comparisons:
            cells.append(f"{comparison.ours_median:.2f} ({comparison.ratio:.2f}x)")
            cells.append(f"{per_file_cpu_us(comparison, result.files):.2f}")
        lines.append(f"| {result.files:,} | " + " | ".join(cells) + " |")
    if len(results) > 1:
        spreads = []
        for index, comparison in enumerate(results[0].comparisons):
            costs = [per_file_cpu_us(result.comparisons[index], result.files) for result in results]
            spread = max(costs) / min(costs) if min(costs) > 0 else float("inf")
            verdict = "ok" if spread <= GROWTH_LIMIT else "MISSED"
            spreads.append(f"{comparison.name} {spread:.2f} ({verdict})")
        lines.append("")
        lines.append(
            f"CPU per file, largest / smallest over the sizes (target <= {GROWTH_LIMIT}): "
            + ", ".join(spreads)
            + "."
        )
    return lines


def report(results: Sequence[SizeResult], runs: int, load: tuple[float, float]) -> str:
    today = datetime.date.today().isoformat()
    largest = max(results, key=lambda result: result.files)
    lines = [
        f"wa-sessions benchmark, {today}: {largest.files:,} files "
        f"({largest.tenants:,} tenants x {largest.files_per_tenant} files)",
        f"machine: {machine()}",
        f"median of {runs} runs after 1 warm-up"
        + (
            f" ({SMALL_TREE_RUNS} on trees of 100,000 files or fewer, {TINY_TREE_RUNS} on 10,000 or fewer)"
            if runs >= 5 and len(results) > 1
            else ""
        )
        + f"; load average {load[0]:.2f} before, {load[1]:.2f} after",
        "",
        *main_table(largest),
        "",
        "checks: " + ", ".join(f"{key} {value}" for key, value in largest.checks.items()),
    ]
    if len(results) > 1:
        lines += [
            "",
            "How the cost grows (same mix, more tenants; CPU µs/file: user + system of all processes,"
            " start-up (a root with one empty tenant) taken off):",
            "",
        ]
        lines += growth_table(results)
    return "\n".join(lines) + "\n"


def as_json(results: Sequence[SizeResult]) -> list[dict[str, Any]]:
    documents = []
    for result in results:
        document = asdict(result)
        pairs = [
            *zip(result.comparisons, document["comparisons"], strict=True),
            *zip(result.variants, document["variants"], strict=True),
        ]
        for comparison, fields in pairs:
            fields.update(
                ours_median=comparison.ours_median,
                find_median=comparison.find_median,
                ratio=comparison.ratio,
                target=TARGETS[comparison.name],
                per_file_us=per_file_us(comparison, result.files),
                per_file_cpu_us=per_file_cpu_us(comparison, result.files),
                max_rss_mb=comparison.max_rss_mb,
            )
        documents.append(document)
    return documents


# ---------------------------------------------------------------- command line


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
        help="comma-separated --jobs values to time scan and cleanup --dry-run with too, on the largest tree "
        "(e.g. 1: how much the default parallelism brings)",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="where the trees go (default: a temp dir)")
    parser.add_argument(
        "--json", type=Path, default=None, dest="json_path", help="also write the results here"
    )
    options = parser.parse_args(argv)
    if options.runs < 1 or options.files_per_tenant < 40 or options.tenants < 1:
        parser.error("--runs must be >= 1, --files-per-tenant >= 40, --tenants >= 1")

    sizes = [int(size) for size in options.sizes.split(",") if size.strip()] if options.sizes else []
    tenant_counts = sorted({max(size // options.files_per_tenant, 1) for size in sizes} | {options.tenants})
    workdir = Path(tempfile.mkdtemp(prefix="wa-sessions-bench-", dir=options.workdir))

    def log(message: str) -> None:
        sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")

    load_before = os.getloadavg()[0]
    try:
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
        shutil.rmtree(workdir, ignore_errors=True)
    text = report(results, options.runs, (load_before, os.getloadavg()[0]))
    sys.stdout.write(text)
    if options.json_path is not None:
        options.json_path.write_text(json.dumps({"report": text, "sizes": as_json(results)}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
