from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import LockHolder


@pytest.fixture
def now() -> float:
    return time.time()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An empty sessions root (the state dir defaults to <root>/.wa-sessions)."""
    folder = tmp_path / "root"
    folder.mkdir()
    return folder


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside the sessions root."""
    folder = tmp_path / "outside"
    folder.mkdir()
    return folder


@pytest.fixture
def hold_lock() -> Iterator[type[LockHolder]]:
    """Start LockHolder processes; any still alive at teardown are killed."""
    started: list[LockHolder] = []

    class _Tracked(LockHolder):
        def __init__(self, lock_path: Path):
            super().__init__(lock_path)
            started.append(self)

    yield _Tracked
    for holder in started:
        holder.close()


# The MySQL store's server (started on first use, one per test session), a database per test, and
# two sessions of mysql-baileys rows in it; `state_root` (only the state dir) for store tests.
from .mariadb_server import mariadb, mysql_db  # noqa: E402, F401
from .mysql_fleet import mysql_fleet, state_root  # noqa: E402, F401
