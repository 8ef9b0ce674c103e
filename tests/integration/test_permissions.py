"""A file the process may not delete is an error for that file; the run goes on (SPEC §7, §9).

As root (the production case: cron), a real permission denial needs a real unprivileged process:
the tenant folder is root's, sticky and world-writable (0o1777), every deletable file belongs to
`nobody` except one old session file that stays root's, and the cleanup runs as `nobody`, who may
unlink its own files there but not root's. Without root, a read-only tenant folder denies instead.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from support.privileges import NOBODY, become_prelude

from .helpers import (
    deleted_files,
    history_lines,
    names,
    run_cli,
    standard_tenant,
    tenant_doc,
    write_config,
    write_file,
)

ROOTS_FILE = "session-15550000099.0.json"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a process as another user")
def test_file_owned_by_someone_else_in_sticky_folder_is_an_error_and_the_rest_is_deleted(
    world: Path, now: float
) -> None:
    root = world / "root"
    root.mkdir(mode=0o755)
    tenant = standard_tenant(root / "company_1", now)
    write_file(tenant.path, ROOTS_FILE, b'{"root": true}', 100, now)
    os.chown(tenant.path, 0, 0)
    os.chmod(tenant.path, 0o1777)
    for name in names(tenant.path):
        os.chmod(tenant.path / name, 0o644)
        os.chown(
            tenant.path / name, NOBODY if name in tenant.delete else 0, NOBODY if name in tenant.delete else 0
        )
    state = world / "state"
    state.mkdir(mode=0o700)
    os.chown(state, NOBODY, NOBODY)
    config = write_config(world / "config.yaml", {"state_dir": str(state)})
    config.chmod(0o644)

    run = run_cli(
        "cleanup",
        "--root",
        root,
        "--config",
        config,
        "--json",
        prelude=become_prelude(NOBODY, NOBODY),
        cwd=world,
    )

    assert run.returncode == 1, run.describe()
    cleaned = tenant_doc(run.doc, "1")
    assert [error["file"] for error in cleaned["errors"]] == [ROOTS_FILE], cleaned["errors"]
    assert cleaned["errors"][0]["error"], cleaned["errors"]
    assert set(deleted_files(cleaned)) == tenant.delete
    assert ROOTS_FILE in names(tenant.path)
    assert not (tenant.delete & names(tenant.path))
    assert cleaned["files_after"] == len(names(tenant.path))
    assert os.stat(tenant.path / ".cleanup.lock").st_uid == NOBODY  # the run really was nobody
    events = [line for line in history_lines(state) if line["file"] == ROOTS_FILE]
    assert events and events[-1].get("event") == "failed", events


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions; see the test above")
def test_read_only_tenant_folder_is_an_error_and_other_tenants_are_cleaned(root: Path, now: float) -> None:
    locked_out = standard_tenant(root / "company_1", now)
    other = standard_tenant(root / "company_2", now)
    (locked_out.path / ".cleanup.lock").touch(mode=0o600)
    locked_out.path.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    try:
        run = run_cli("cleanup", "--root", root, "--json")
    finally:
        locked_out.path.chmod(0o755)

    assert run.returncode == 1, run.describe()
    denied = tenant_doc(run.doc, "1")
    assert {error["file"] for error in denied["errors"]} == locked_out.delete, denied["errors"]
    assert deleted_files(denied) == []
    assert locked_out.delete <= names(locked_out.path)
    assert set(deleted_files(tenant_doc(run.doc, "2"))) == other.delete
    assert not (other.delete & names(other.path))
