"""`config show` as text: the file in effect, then every key with its value and source, aligned."""

from __future__ import annotations

import pytest

from wa_sessions.output import Style, render
from wa_sessions.results import Result


def test_config_show_lines_up_keys_values_and_sources(
    config_result: Result, capsys: pytest.CaptureFixture[str]
) -> None:
    render(config_result, Style())
    assert capsys.readouterr().out == (
        "config file: (none)\n"
        "root        /srv/sessions  cli\n"
        "locks.wait  5s             env WA_SESSIONS_LOCKS__WAIT\n"
    )
