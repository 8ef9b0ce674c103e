"""The library's input errors: bad usage or configuration, found before anything was read or changed (exit 2)."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input found before anything was changed (exit 2)."""


class ConfigError(Exception):
    """The configuration is invalid; the message names every bad key."""


class StoreUnavailable(Exception):
    """The store cannot be reached or used (server down, wrong password, client missing): exit 1.
    The message names the server, never its password."""
