"""The command line run in this process at a frozen time, its output as a pipe would get it."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from freezegun import freeze_time

from wa_sessions import cli


def run_at(argv: list[str], at: str, root: Path) -> tuple[int, str, str]:
    """`wa-sessions ARGV` at the frozen time `at` (stdout and stderr not a terminal): the exit code
    and both outputs with `root` shown as <ROOT> and the time of error lines (`at`) left out."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with freeze_time(at), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = cli.run(argv)
    out, err = (
        stream.getvalue().replace(str(root), "<ROOT>").replace(f"wa-sessions: {at} ", "wa-sessions: ")
        for stream in (stdout, stderr)
    )
    return code, out, err
