"""The C listing is optional (an install without a compiler falls back to os.scandir), so a broken
build would go unnoticed but for this file, which does not need the extension to run."""

from __future__ import annotations

import shutil

import pytest

from wa_sessions import listing as scan


def test_the_c_listing_is_built_wherever_a_compiler_is() -> None:
    if not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("no C compiler here: the pure-Python listing is expected")
    assert scan.LISTING == "C", "a C compiler is on PATH but wa_sessions/_listing.c was not built"


def test_the_scan_lists_with_the_listing_it_names() -> None:
    if scan.LISTING == "C":
        from wa_sessions._listing import listing as c_listing

        assert scan.listing is c_listing
    else:
        assert scan.listing is scan.python_listing
