"""output/markdown.py: the report as Markdown, exact."""

from __future__ import annotations

from wa_sessions.output.markdown import report_markdown
from wa_sessions.results import Result


def test_the_report_is_one_markdown_table_per_section(report_result: Result) -> None:
    text = report_markdown(report_result)
    assert text.startswith(
        "# wa-sessions report\n\n"
        "wa-sessions report of /srv/sessions at 2030-01-15T12:00:00Z: 2 tenants, 181 files, 17.7 KiB; "
        "history: 5 files (400 bytes) deleted\n\n"
        "## Tenants per status\n\n"
        "| status | tenants |\n| --- | ---: |\n| healthy | 1 |\n| warning | 0 |\n| critical | 0 |\n"
        "| trigger | 0 |\n| emergency | 1 |\n| danger | 0 |\n| unknown | 0 |\n"
    )
    assert text.endswith(
        "## Tenants\n\n"
        "| company | status | files | bytes | problems | last cleanup | deleted | freed |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        "| 7 | emergency | 178 | 17.4 KiB | 0 | 2030-01-15T10:00:00Z | 2 | 136 bytes |\n"
        "| 8 | healthy | 3 | 300 bytes | 0 | never | 0 | 0 bytes |\n"
    )


def test_a_cell_cannot_break_the_table(report_result: Result) -> None:
    report_result.tenants[1].before.company = "a|b\\c"
    assert "| a\\|b\\\\c | healthy |" in report_markdown(report_result)
