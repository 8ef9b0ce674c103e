"""The C listing is optional (an install without a compiler falls back to os.scandir), so a broken
build would go unnoticed but for this file, which does not need the extension to run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

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


# ---------------------------------------------------------------- a stale build/ is never shipped

REPOSITORY = Path(__file__).resolve().parents[2]
EXTENSION = f"_listing{sysconfig.get_config_var('EXT_SUFFIX')}"
BOGUS = b"not an ELF file: the stale build of another checkout"


def _checkout_with_a_stale_build(folder: Path) -> Path:
    """A copy of the checkout (no built extension in it) with a bogus `_listing*.so` left in every
    build folder setuptools may use, newer than the C source (so it looks up to date)."""
    checkout = folder / "checkout"
    checkout.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(REPOSITORY / name, checkout / name)
    shutil.copytree(
        REPOSITORY / "wa_sessions",
        checkout / "wa_sessions",
        ignore=shutil.ignore_patterns("*.so", "__pycache__"),
    )
    platform_lib = f"lib.{sysconfig.get_platform()}-{sys.implementation.cache_tag}"
    tag = f"{sys.version_info.major}{sys.version_info.minor}"
    for lib in ("lib", platform_lib, f"lib.{sysconfig.get_platform()}-{tag}"):
        stale = checkout / "build" / lib / "wa_sessions" / EXTENSION
        stale.parent.mkdir(parents=True)
        stale.write_bytes(BOGUS)
        later = time.time() + 86400
        os.utime(stale, (later, later))
    return checkout


def _build_and_install(checkout: Path, target: Path, env: dict[str, str]) -> tuple[bytes | None, str]:
    """`pip wheel .` in the checkout, then the wheel installed into `target`: the listing shipped
    (None if none) and what `wa-sessions --version` says there."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-w", "dist", "-q"],
        cwd=checkout,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = (checkout / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = [
            name
            for name in archive.namelist()
            if name.startswith("wa_sessions/_listing") and name.endswith(".so")
        ]
        listing = archive.read(shipped[0]) if shipped else None
    # A fresh environment with the wheel installed: this one's editable install of the checkout
    # would otherwise answer for `wa_sessions._listing` when the wheel has none.
    environment = target / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(environment)], check=True, timeout=120)
    (site_packages,) = environment.glob("lib/python*/site-packages")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(site_packages),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # the dependencies (typer, rich, ...) from this environment, as a path: its .pth files, the
    # editable install's among them, are not read from there
    (site_packages / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    version = subprocess.run(
        [str(environment / "bin" / "python"), "-m", "wa_sessions", "--version"],
        env={key: value for key, value in os.environ.items() if key != "PYTHONPATH"},
        cwd=target,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return listing, version


def test_without_a_compiler_a_stale_build_is_not_shipped_and_the_python_listing_runs(tmp_path: Path) -> None:
    checkout = _checkout_with_a_stale_build(tmp_path)
    env = {**os.environ, "CC": "false"}  # every compile fails, as where no compiler exists
    listing, version = _build_and_install(checkout, tmp_path, env)
    assert listing is None, "the stale build/ was shipped in the wheel"
    assert "directory listing in Python" in version, version


def test_with_a_compiler_the_listing_is_built_anew_not_taken_from_a_stale_build(tmp_path: Path) -> None:
    if not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("no C compiler here")
    checkout = _checkout_with_a_stale_build(tmp_path)
    listing, version = _build_and_install(checkout, tmp_path, dict(os.environ))
    assert listing is not None and listing.startswith(b"\x7fELF"), (listing or b"")[:60]
    assert "directory listing in C" in version, version
