"""output/text.py: plain text off a terminal, exact; names escaped; errors on stderr."""

from __future__ import annotations

import pytest
from freezegun import freeze_time

from wa_sessions.output import Style, render
from wa_sessions.output.escape import one_line
from wa_sessions.output.text import write_errors
from wa_sessions.results import Result


@freeze_time("2030-01-15T12:00:00Z")
def test_a_dry_run_prints_the_table_then_every_file_with_its_reason(
    cleanup_result: Result, capsys: pytest.CaptureFixture[str]
) -> None:
    render(cleanup_result, Style())
    out, err = capsys.readouterr()
    assert out == (
        "[dry-run] wa-sessions cleanup of /srv/sessions: would delete 2 files (136 bytes) in 2 tenants\n"
        "company     status  files  -prekey  -session      freed  after                              action\n"
        "7        emergency    180        1         1  136 bytes    178                             cleanup\n"
        "8          healthy      0        0         0    0 bytes      0  skipped: locked by another process\n"
        "[dry-run] 7: would delete pre-key-1.json (pre-key, 120 bytes): pre-key id 1 beyond the newest 50 (ids 101–150 kept)\n"
        "[dry-run] 7: would delete session-1.0.json (session, 16 bytes): older than 14d: last used 20d 3h ago\n"
        "[dry-run] 7: note: a note\n"
    )
    assert err == "wa-sessions: 2030-01-15T12:00:00Z 8: skipped, locked by another process\n"


@freeze_time("2030-01-15T12:00:00Z")
def test_quiet_prints_errors_only(cleanup_result: Result, capsys: pytest.CaptureFixture[str]) -> None:
    render(cleanup_result, Style(quiet=True))
    assert capsys.readouterr() == (
        "",
        "wa-sessions: 2030-01-15T12:00:00Z 8: skipped, locked by another process\n",
    )


def test_a_busy_tenant_is_quiet_where_it_is_no_failure(
    cleanup_result: Result, capsys: pytest.CaptureFixture[str]
) -> None:
    cleanup_result.busy_is_error = False
    write_errors(cleanup_result, Style(quiet=True))
    assert capsys.readouterr() == ("", "")


@freeze_time("2030-01-15T12:00:00Z")
def test_a_scan_prints_the_table_the_problems_and_the_disk(
    scan_result: Result, capsys: pytest.CaptureFixture[str]
) -> None:
    render(scan_result, Style())
    out, err = capsys.readouterr()
    assert out == (
        "wa-sessions scan of /srv/sessions: 2 tenants\n"
        "company  files      bytes     status  prekey  session  skey  other\n"
        "7          180   17.6 KiB  emergency     150       29     0      1\n"
        "8            3  300 bytes    healthy       1        0     0      2\n"
        "other: the files of the other categories (--wide: a column each)\n"
        "8: problem: creds.json is unparseable\n"
        "disk: 1.0 GiB free of 4.0 GiB; inodes: 250 free of 1,000 (25%)\n"
    )
    assert (
        err
        == "wa-sessions: 2030-01-15T12:00:00Z 7 is emergency (180 files), at or above --fail-on emergency\n"
    )


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("pre-key-1\u202enosj.txt", "pre-key-1\\u202enosj.txt"),
        ("a\nb", "a\\nb"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("plain-name.json", "plain-name.json"),
    ],
)
def test_names_are_shown_on_one_line_with_controls_escaped(name: str, shown: str) -> None:
    assert one_line(name) == shown
