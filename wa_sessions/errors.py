"""The library's one usage error: bad input found before anything was read or changed (exit 2)."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input found before anything was changed (exit 2)."""
