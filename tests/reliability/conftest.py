"""Fixtures of the reliability campaign; the machinery lives in support.py."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .support import FIGURES, SEED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the seed and the campaign's figures (also written to WA_RELIABILITY_SUMMARY)."""
    if not FIGURES:
        return
    summary = {"seed": SEED, **dict(sorted(FIGURES.items()))}
    terminalreporter.write_sep("-", f"wa-sessions reliability figures (seed {SEED})")
    for key, value in summary.items():
        terminalreporter.write_line(f"{key}: {value}")
    target = os.environ.get("WA_RELIABILITY_SUMMARY") or str(
        Path(tempfile.gettempdir()) / "wa-sessions-reliability-summary.json"
    )
    with contextlib.suppress(OSError):
        Path(target).write_text(json.dumps(summary, indent=2) + "\n")
        terminalreporter.write_line(f"written to {target}; replay with WA_RELIABILITY_SEED={SEED}")


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """A random source per test, derived from the session seed and the test's name."""
    print(f"seed {SEED}")
    return random.Random(f"{SEED}:{request.node.name}")


@pytest.fixture
def figures() -> Counter[str]:
    return FIGURES


@pytest.fixture
def world() -> Iterator[Path]:
    """A scratch folder every user can traverse (pytest's tmp_path lives under a 0700 folder)."""
    path = Path(tempfile.mkdtemp(prefix="wa-reliability-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for folder, dirs, _files in os.walk(path):
            for name in dirs:
                path = os.path.join(folder, name)
                if not os.path.islink(path):
                    with contextlib.suppress(OSError):
                        os.chmod(path, 0o755)
        shutil.rmtree(path, ignore_errors=True)
