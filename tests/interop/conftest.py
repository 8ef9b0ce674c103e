"""pytest configuration for the Baileys interop tests (see test_baileys_interop.py), and the stores
of test_baileys_interop_stores.py (stores_under_test.py; the MariaDB of tests/conftest.py: one
server per session, a database per test)."""

import pytest
from stores_under_test import mysql_store, redis_store

__all__ = ["mysql_store", "redis_store"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "interop: runs the real Baileys (node + npm ci --prefix tests/interop)"
    )
