"""Command lines that many tests build the same way."""

from __future__ import annotations

import os


def purge_args(config: str | os.PathLike[str], older_than: str) -> list[str | os.PathLike[str]]:
    """The arguments `emergency-cleanup --config CONFIG --purge-stale-dirs --older-than AGE`; the
    options of each test (--yes, --dry-run, --json, --no-backup) follow them."""
    return ["emergency-cleanup", "--config", config, "--purge-stale-dirs", "--older-than", older_than]
