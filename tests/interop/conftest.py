"""pytest configuration for the Baileys interop tests (see test_baileys_interop.py)."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "interop: runs the real Baileys (node + npm ci --prefix tests/interop)"
    )
