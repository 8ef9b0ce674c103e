"""The benchmark runs end to end on a small fleet and prints its ratios (no timing assertion:
CI machines are too noisy for that; `python -m bench.run` is the measurement)."""

from __future__ import annotations

import re
from pathlib import Path

from support.bench import run_benchmark


def test_benchmark_script_produces_its_ratios_on_a_small_tree(tmp_path: Path) -> None:
    report, document = run_benchmark(
        "bench.run", tmp_path, "--tenants", "40", "--files-per-tenant", "500", "--runs", "1"
    )
    assert "20,000 files (40 tenants x 500 files)" in report
    assert re.search(r"wa-sessions \S+ \(directory listing in (C|Python)\)", report), report[:500]
    for command, baseline in (
        ("`scan --json`", "`find -printf"),
        ("`cleanup --dry-run --json`", "`find -printf"),
        ("`cleanup` (real)", "equivalent pipeline"),
    ):
        (row,) = [line for line in report.splitlines() if line.startswith(f"| {command} |")]
        assert baseline in row and re.search(r"\*\*\d+\.\d\dx\*\*", row), row  # the ratio to the baseline
    assert "| (same run) | | Node `readdirSync`+`statSync` planner |" in report
    assert "| (same run) | | bare `find -delete` one-liner" in report
    assert re.search(r"\| wa-sessions scan --json \| 0\.\d{3} \|", report)  # start-up, one empty tenant
    assert set(document["startup"]) == {
        "scan --json",
        "cleanup --dry-run --json",
        "cleanup",
        "node planner",
        "find -printf",
    }
    (size,) = document["sizes"]
    assert [comparison["name"] for comparison in size["comparisons"]] == ["scan", "dry-run", "cleanup"]
    peers = [sorted(comparison["peer_medians"]) for comparison in size["comparisons"]]
    assert peers == [["find"], ["find", "node"], ["bare", "equivalent"]]
    for comparison in size["comparisons"]:
        assert comparison["ratio"] > 0 and comparison["ours_median"] > 0
        assert all(median > 0 for median in comparison["peer_medians"].values())
        assert comparison["max_rss_mb"] > 0 and comparison["peak_rss_all_mb"] > 0
    checks = size["checks"]
    assert checks["files_found_by_find"] == checks["files_seen_by_scan"] == checks["files_generated"] == 20000
    assert checks["dry_run_matches_cleanup"] is True
    assert checks["equivalent_pipeline_leaves_the_same_files"] is True
    assert checks["files_left_by_ours"] == checks["files_left_by_equivalent"] < checks["files_left_by_bare"]
    assert [path.name for path in tmp_path.iterdir()] == ["results.json"]  # the trees are gone
