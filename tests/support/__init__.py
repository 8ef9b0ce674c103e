"""Helpers shared by every test directory (unit, cli, integration, reliability, interop).

tests/conftest.py puts tests/ on sys.path (pytest's default rootdir-based import), so test modules
import these as `from support.<module> import ...`.
"""
