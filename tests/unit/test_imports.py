"""The layering of STYLE.md, checked: pure modules import nothing that touches disk, clock or pydantic."""

from __future__ import annotations

import subprocess
import sys

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
