"""Run a benchmark module of bench/ the way a person does, for the smoke tests of tests/bench/."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parents[2]


def run_benchmark(module: str, workdir: Path, *arguments: str) -> tuple[str, dict[str, Any]]:
    """`python -m <module> <arguments> --workdir <workdir> --json <workdir>/results.json` from the
    repository; return its report and its JSON document. Fail (with its stderr) unless it exits 0."""
    results = workdir / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", module, *arguments, "--workdir", str(workdir), "--json", str(results)],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout, json.loads(results.read_text())
