"""Fixtures of the reliability campaign; the machinery lives in support.py (the `world` folder that
`nobody` can reach is in tests/conftest.py)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import tempfile
from collections import Counter
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
