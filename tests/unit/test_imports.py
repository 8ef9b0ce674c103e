"""The layering of STYLE.md, checked: pure modules import nothing that touches disk, clock or pydantic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("module", ["wa_sessions.rules", "wa_sessions.layout", "wa_sessions.durations"])
def test_pure_modules_import_no_pydantic_and_no_configuration(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "loaded = [m for m in ('pydantic', 'pydantic_settings', 'wa_sessions.config', 'yaml') if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert shown.strip() == ""


def _pydantic_modules_after(code: str) -> list[str]:
    """The pydantic modules loaded by a child Python running `code` (then listing them)."""
    listing = "\nimport sys\nprint(','.join(m for m in sys.modules if 'pydantic' in m))\n"
    shown = subprocess.run(
        [sys.executable, "-c", code + listing], capture_output=True, text=True, check=True
    ).stdout
    return [name for name in shown.strip().split(",") if name]


def test_the_cli_of_scan_and_cleanup_imports_no_pydantic() -> None:
    """Start-up (issue 13): the configuration is read without pydantic / pydantic-settings."""
    code = "import wa_sessions.cli, wa_sessions.actions.scan, wa_sessions.actions.cleanup, wa_sessions.config"
    assert _pydantic_modules_after(code) == []


def test_a_scan_reading_a_yaml_config_and_the_environment_loads_no_pydantic(tmp_path: Path) -> None:
    (tmp_path / "company_1").mkdir()
    config = tmp_path / "config.yaml"
    config.write_text(
        f"root: {tmp_path}\nrules: {{session: {{max_age: 7d}}}}\nthresholds: {{warning: 100}}\n"
    )
    code = (
        "import contextlib, io, os\n"
        "os.environ['WA_SESSIONS_RULES__PRE_KEY__KEEP_NEWEST'] = '30'\n"
        "from wa_sessions.cli import run\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert run(['scan', '--json', '--config', {str(config)!r}]) == 0\n"
    )
    assert _pydantic_modules_after(code) == []
