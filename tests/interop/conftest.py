"""pytest configuration for the Baileys interop tests (see test_baileys_interop.py)."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "interop: runs the real Baileys (node + npm ci --prefix tests/interop)"
    )


# the MariaDB of tests/integration (one server per session, a database per test) for the store tests
from integration.mariadb_server import mariadb, mysql_db  # noqa: E402, F401
