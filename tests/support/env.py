"""The environment variables that would change what wa-sessions does, and an environment without them.

tests/conftest.py removes them from os.environ before every test (an autouse fixture); a test sets
what it needs with monkeypatch.setenv or by passing `extra` to a child's environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

#: Read by wa-sessions besides WA_SESSIONS_* (those are read in any case: config_sources.py).
LEGACY_VARIABLES = ("BAILEYS_SESSIONS_PATH", "NOTIFICATION_WEBHOOK")
#: Change the text output: Rich tables on a terminal; no time on error lines into the journal.
OUTPUT_VARIABLES = ("NO_COLOR", "JOURNAL_STREAM")


def is_wa_sessions_variable(name: str) -> bool:
    """True for a variable of the caller's shell that must not leak into a test."""
    return name.upper().startswith("WA_SESSIONS_") or name in LEGACY_VARIABLES or name in OUTPUT_VARIABLES


def clean_env(extra: Mapping[str, str] | None = None, *, no_color: bool = False) -> dict[str, str]:
    """The current environment without any wa-sessions variable, plus NO_COLOR=1 if asked, plus `extra`
    (for a child process)."""
    env = {name: value for name, value in os.environ.items() if not is_wa_sessions_variable(name)}
    if no_color:
        env["NO_COLOR"] = "1"
    env.update(extra or {})
    return env
