"""The benchmark runs end to end on a small fleet and prints its ratios (no timing assertion:
CI machines are too noisy for that; `python -m bench.run` is the measurement)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def test_benchmark_script_produces_its_ratios_on_a_small_tree(tmp_path: Path) -> None:
    results = tmp_path / "bench.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--tenants",
            "40",
            "--files-per-tenant",
            "500",
            "--runs",
            "1",
            "--workdir",
            str(tmp_path),
            "--json",
            str(results),
        ],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = completed.stdout
    assert "20,000 files (40 tenants x 500 files)" in report
    assert re.search(r"wa-sessions \S+ \(directory listing in (C|Python)\)", report), report[:500]
    for command in ("`scan --json`", "`cleanup --dry-run --json`", "`cleanup` (real)"):
        (row,) = [line for line in report.splitlines() if line.startswith(f"| {command}")]
        assert re.search(r"\*\*\d+\.\d\dx\*\*", row), row  # the ratio ours / find
    (size,) = json.loads(results.read_text())["sizes"]
    assert [comparison["name"] for comparison in size["comparisons"]] == ["scan", "dry-run", "cleanup"]
    for comparison in size["comparisons"]:
        assert comparison["ratio"] > 0 and comparison["ours_median"] > 0 and comparison["find_median"] > 0
        assert comparison["max_rss_mb"] > 0
    checks = size["checks"]
    assert checks["files_found_by_find"] == checks["files_seen_by_scan"] == checks["files_generated"] == 20000
    assert checks["dry_run_matches_cleanup"] is True
    assert list(tmp_path.iterdir()) == [results]  # the trees are gone
