"""Fixtures for every test directory; shared helpers live in tests/support/."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from integration.mariadb_server import mariadb, mysql_db
from support.env import is_wa_sessions_variable

# One MariaDB per test session, whichever directory starts it (tests/integration, tests/interop).
__all__ = ["mariadb", "mysql_db"]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No WA_SESSIONS_* (any case), BAILEYS_SESSIONS_PATH, NOTIFICATION_WEBHOOK or NO_COLOR of the
    caller's shell leaks into a test. Autouse fixtures of the top conftest run before every other
    fixture of the test, so a test (or its fixtures) may set any of them afterwards with
    monkeypatch.setenv; monkeypatch puts the caller's values back after the test."""
    for name in list(os.environ):
        if is_wa_sessions_variable(name):
            monkeypatch.delenv(name)


def _traversable_by_others(folder: Path) -> bool:
    return all(os.stat(part).st_mode & stat.S_IXOTH for part in (folder, *folder.parents))


@pytest.fixture
def world() -> Iterator[Path]:
    """A scratch folder (0o755) that an unprivileged user (`nobody`) can reach, for the tests that
    run wa-sessions as that user; removed afterwards.

    Not tmp_path: pytest keeps its base folder (<tmp>/pytest-of-<user>) 0o700 and makes it so again
    at the start of every session, which may be another session running at the same time; so the
    folder is made in the temporary directory itself (TMPDIR, else /tmp)."""
    base = Path(tempfile.mkdtemp(prefix="wa-sessions-world-"))
    try:
        base.chmod(0o755)
        if not _traversable_by_others(base):
            pytest.fail(
                f"{base}: the temporary directory cannot be reached by other users; run the tests "
                "with TMPDIR set to a folder they can traverse (e.g. TMPDIR=/tmp)"
            )
        yield base
    finally:
        for folder, dirs, _files in os.walk(base):
            for name in dirs:
                path = os.path.join(folder, name)
                if not os.path.islink(path):
                    with contextlib.suppress(OSError):
                        os.chmod(path, 0o755)
        shutil.rmtree(base, ignore_errors=True)
