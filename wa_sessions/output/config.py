"""`config show` and `config validate` as text: one line each, or the settings with their
sources in aligned columns. Names and values are shown escaped (`one_line`)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from wa_sessions.output.escape import one_line
from wa_sessions.results import Result

if TYPE_CHECKING:
    from wa_sessions.output import Style


def write_config(result: Result, style: Style) -> None:
    if style.quiet:
        return
    if result.command == "config validate":
        where = result.config_file or "no config file; defaults and environment"
        sys.stdout.write(one_line(f"configuration is valid ({where})") + "\n")
        return
    sys.stdout.write(one_line(f"config file: {result.config_file or '(none)'}") + "\n")
    rows = [
        (one_line(v.key), one_line(_config_value(v.value)), one_line(v.source)) for v in result.config_values
    ]
    key_width = max(len(key) for key, _, _ in rows)
    value_width = max(len(value) for _, value, _ in rows)
    for key, value, source in rows:
        sys.stdout.write(f"{key.ljust(key_width)}  {value.ljust(value_width)}  {source}\n")


def _config_value(value: object) -> str:
    if value is None:
        return "null"
    return value if isinstance(value, str) else json.dumps(value)
