"""The store benchmark runs end to end on a small fleet in a real redis-server, and a real MariaDB,
that it starts itself, and prints its ratios to the HGETALL / SELECT floor (no timing assertion: `python -m bench.stores` at
1,000,000 keys is the measurement)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from support.bench import run_benchmark

SERVERS = {"redis": "redis-server", "mysql": "mariadbd"}
# wa-sessions runs with its default --jobs: 2 processes from 64 tenants up (the 100 here), so
# forked workers each open their own connections (a shared PyMySQL connection broke every session).


@pytest.mark.parametrize("store", ["redis", "mysql"])
def test_store_benchmark_produces_its_ratios_on_a_small_fleet(tmp_path: Path, store: str) -> None:
    if shutil.which(SERVERS[store], path=os.environ.get("PATH", "") + ":/usr/sbin") is None:
        pytest.skip(f"{SERVERS[store]} is not installed (.ci/run installs it)")
    report, document = run_benchmark(
        "bench.stores", tmp_path, "--store", store, "--keys", "20000", "--runs", "1"
    )
    assert "20,000 keys over 100 tenants" in report, report[:500]
    for command in ("`scan --json`", "`cleanup --dry-run --json`", "`cleanup` (real)"):
        (row,) = [line for line in report.splitlines() if line.startswith(f"| {command} |")]
        assert re.search(r"\*\*\d+\.\d\dx\*\*", row), row  # the ratio to the floor
    assert document["store"] == store
    assert [row["name"] for row in document["rows"]] == ["scan", "dry-run", "cleanup"]
    for row in document["rows"]:
        assert row["ours_median"] > 0 and row["floor_median"] > 0 and row["client_peak_rss_mb"] > 0
    checks = document["checks"]
    assert checks["keys_written"] == checks["keys_in_store"] == checks["keys_seen_by_scan"] == 20000
    # a realistic share is deleted, and the dry run said exactly what the cleanup did
    assert 0.2 * 20000 < checks["keys_deleted_by_cleanup"] < 0.8 * 20000
    assert checks["dry_run_matches_cleanup"] is True
    assert [path.name for path in tmp_path.iterdir()] == ["results.json"]  # the server's files are gone
