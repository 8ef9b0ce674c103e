"""pytest configuration for the Baileys interop tests (see test_baileys_interop.py), and the MariaDB
of tests/integration (one server per session, a database per test) for test_baileys_interop_stores.py."""

import pytest
from integration.mariadb_server import mariadb, mysql_db

__all__ = ["mariadb", "mysql_db"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "interop: runs the real Baileys (node + npm ci --prefix tests/interop)"
    )
