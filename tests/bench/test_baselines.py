"""The equivalent pipeline deletes what wa-sessions deletes, and the check that says so can fail."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from bench import baselines
from bench.generate import generate


def _cleaned(pristine: Path, copy: Path, command: list[str], listing: Path) -> int:
    subprocess.run(["cp", "-al", str(pristine), str(copy)], check=True)
    subprocess.run(command, check=True, capture_output=True)
    return baselines.remaining_files(copy, listing)


@pytest.fixture(scope="module")
def cleaned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6-tenant tree cleaned three times, on copies: by wa-sessions, the equivalent pipeline and
    the bare one-liner; the listings of what each left."""
    folder = tmp_path_factory.mktemp("baselines")
    generate(folder / "tree", 6, 300, now=time.time(), jobs=1)
    for who, command in (
        ("ours", lambda copy: baselines.ours("cleanup", "--root", str(copy), jobs=1)),
        ("equivalent", baselines.equivalent_pipeline),
        ("bare", baselines.bare_one_liner),
    ):
        _cleaned(folder / "tree", folder / who, command(folder / who), folder / f"{who}.txt")
    return folder


def test_the_equivalent_pipeline_leaves_the_files_wa_sessions_leaves(cleaned: Path) -> None:
    baselines.check_same_files(cleaned / "ours.txt", cleaned / "equivalent.txt")
    left = (cleaned / "ours.txt").read_text().splitlines()
    assert 0 < len(left) < 6 * 300
    assert not any(line.split("/")[1].startswith(".") for line in left)  # our lock and state dir left out


def test_the_check_fails_loudly_against_the_bare_one_liner(cleaned: Path) -> None:
    with pytest.raises(RuntimeError, match="left different files") as raised:
        baselines.check_same_files(cleaned / "ours.txt", cleaned / "bare.txt")
    assert "pre-key-" in str(raised.value)  # the bare one-liner keeps every pre-key


def test_the_node_planner_plans_the_age_rules_and_the_pre_key_cap(cleaned: Path) -> None:
    completed = subprocess.run(
        baselines.node_planner(cleaned / "tree"), capture_output=True, text=True, check=True
    )
    lines = completed.stdout.splitlines()
    assert lines and all(line.startswith('{"company":"company_') for line in lines)
    categories = {line.split('"category":"')[1].split('"')[0] for line in lines}
    assert categories == {"pre-key", "session", "sender-key"}
