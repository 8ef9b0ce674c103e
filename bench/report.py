"""The folder benchmark's results and their Markdown tables (bench/run.py measures them)."""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.baselines import NAMES
from bench.processes import Memory, Sample, median_cpu, median_wall

# issue 13's targets at 1,000,000 files: ratios to the baseline, seconds, MB
TARGETS = {"scan": 1.0, "dry-run": 1.25, "cleanup": 1.3}
STARTUP_TARGET_S = 0.1
RSS_LIMIT_MB = 100
GROWTH_LIMIT = 1.25
COMMANDS = {"scan": "`scan --json`", "dry-run": "`cleanup --dry-run --json`", "cleanup": "`cleanup` (real)"}


@dataclass(slots=True)
class Comparison:
    """One command of ours against its peers on one tree; the ratio is taken against `baseline`."""

    name: str
    baseline: str
    variant: str = ""  # e.g. "--jobs 1": the same command with other options
    ours: list[Sample] = field(default_factory=list)
    peers: dict[str, list[Sample]] = field(default_factory=dict)
    ours_startup: float = 0.0
    ours_startup_cpu: float = 0.0
    memory: Memory = field(default_factory=Memory)

    @property
    def ours_median(self) -> float:
        return median_wall(self.ours)

    @property
    def ours_cpu(self) -> float:
        return median_cpu(self.ours)

    def peer_median(self, peer: str) -> float:
        return median_wall(self.peers[peer])

    @property
    def ratio(self) -> float:
        return self.ours_median / self.peer_median(self.baseline)

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
    runs: int = 0


@dataclass(slots=True)
class Startup:
    """Commands timed on a root with one empty tenant."""

    samples: dict[str, list[Sample]]

    def as_json(self) -> dict[str, float]:
        return {name: median_wall(samples) for name, samples in self.samples.items()}


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break

    def version(*argv: str) -> str:
        completed = subprocess.run(list(argv), capture_output=True, text=True, check=False)
        return completed.stdout.strip().splitlines()[0] if completed.stdout.strip() else "?"

    return (
        f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}, Python {platform.python_version()}, "
        f"{version('find', '--version')}, node {version('node', '--version')}, "
        f"{version(sys.executable, '-m', 'wa_sessions', '--version')}"
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
        "| command | ours (median s) | baseline | baseline (median s) | ratio | target | CPU s ours / baseline"
        " | peak RSS largest process | peak RSS all processes (PSS) | files/s |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for comparison in [*result.comparisons, *result.variants]:
        ours_name = COMMANDS[comparison.name]
        if comparison.variant:
            ours_name = f"{ours_name[:-1]} {comparison.variant}`"
        target = TARGETS[comparison.name]
        verdict = "ok" if comparison.ratio <= target else "MISSED"
        baseline = comparison.baseline
        lines.append(
            f"| {ours_name} | {comparison.ours_median:.2f} | {NAMES[baseline]} | {comparison.peer_median(baseline):.2f}"
            f" | **{comparison.ratio:.2f}x** | <= {target}x {verdict}"
            f" | {comparison.ours_cpu:.1f} / {median_cpu(comparison.peers[baseline]):.1f}"
            f" | {comparison.max_rss_mb:.0f} MB | {comparison.memory.rss_kb / 1024:.0f} MB"
            f" ({comparison.memory.pss_kb / 1024:.0f} MB) | {result.files / comparison.ours_median:,.0f} |"
        )
        for peer in comparison.peers:
            if peer != baseline:
                lines.append(
                    f"| (same run) | | {NAMES[peer]} | {comparison.peer_median(peer):.2f}"
                    f" | {comparison.ours_median / comparison.peer_median(peer):.2f}x | (for scale)"
                    f" | {comparison.ours_cpu:.1f} / {median_cpu(comparison.peers[peer]):.1f} | | | |"
                )
    return lines


def startup_table(startup: Startup) -> list[str]:
    lines = ["| command (root with one empty tenant) | median s | target |", "| --- | ---: | ---: |"]
    for name, samples in startup.samples.items():
        ours = not name.startswith(("node", "find"))
        seconds = median_wall(samples)
        target = (
            (f"<= {STARTUP_TARGET_S} s " + ("ok" if seconds <= STARTUP_TARGET_S else "MISSED"))
            if ours
            else ""
        )
        lines.append(f"| {'wa-sessions ' if ours else ''}{name} | {seconds:.3f} | {target} |")
    return lines


def growth_table(results: Sequence[SizeResult]) -> list[str]:
    lines = [
        "| files | runs | scan s (ratio) | scan CPU µs/file | dry-run s (ratio) | dry-run CPU µs/file"
        " | cleanup s (ratio) | cleanup CPU µs/file | peak RSS all processes (MB) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        cells = []
        for comparison in result.comparisons:
            cells.append(f"{comparison.ours_median:.2f} ({comparison.ratio:.2f}x)")
            cells.append(f"{per_file_cpu_us(comparison, result.files):.2f}")
        peak = max(comparison.memory.rss_kb for comparison in result.comparisons) / 1024
        lines.append(f"| {result.files:,} | {result.runs} | " + " | ".join(cells) + f" | {peak:.0f} |")
    if len(results) > 1:
        spreads = []
        for index, comparison in enumerate(results[0].comparisons):
            costs = [per_file_cpu_us(result.comparisons[index], result.files) for result in results]
            spread = max(costs) / min(costs) if min(costs) > 0 else float("inf")
            verdict = "ok" if spread <= GROWTH_LIMIT else "MISSED"
            spreads.append(f"{comparison.name} {spread:.2f} ({verdict})")
        lines += [
            "",
            f"CPU per file, largest / smallest over the sizes (target <= {GROWTH_LIMIT}): "
            + ", ".join(spreads)
            + ".",
        ]
    return lines


def report(results: Sequence[SizeResult], startup: Startup, runs: int, load: tuple[float, float]) -> str:
    largest = max(results, key=lambda result: result.files)
    peak = max(comparison.memory.rss_kb for comparison in largest.comparisons) / 1024
    lines = [
        f"wa-sessions benchmark, {datetime.date.today().isoformat()}: {largest.files:,} files "
        f"({largest.tenants:,} tenants x {largest.files_per_tenant} files)",
        f"machine: {machine()}",
        f"median of {largest.runs} interleaved runs after 1 warm-up"
        + (" (more on the smaller trees: see runs)" if len(results) > 1 else "")
        + f"; load average {load[0]:.2f} before, {load[1]:.2f} after",
        "",
        *main_table(largest),
        "",
        f"peak RSS summed over all processes: {peak:.0f} MB (target <= {RSS_LIMIT_MB} MB "
        + ("ok" if peak <= RSS_LIMIT_MB else "MISSED")
        + ")",
        "",
        *startup_table(startup),
        "",
        "checks: " + ", ".join(f"{key} {value}" for key, value in largest.checks.items()),
    ]
    if len(results) > 1:
        lines += [
            "",
            "How the cost grows (same mix, more tenants; CPU µs/file: user + system of all processes,"
            " start-up (a root with one empty tenant) taken off):",
            "",
            *growth_table(results),
        ]
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
                peer_medians={peer: comparison.peer_median(peer) for peer in comparison.peers},
                ratio=comparison.ratio,
                target=TARGETS[comparison.name],
                per_file_us=per_file_us(comparison, result.files),
                per_file_cpu_us=per_file_cpu_us(comparison, result.files),
                max_rss_mb=comparison.max_rss_mb,
                peak_rss_all_mb=comparison.memory.rss_kb / 1024,
            )
        documents.append(document)
    return documents
