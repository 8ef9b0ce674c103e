"""Running as another user (`nobody`, uid/gid 65534) in a test that runs as root.

The interpreter and its site-packages may live where that user cannot read (e.g. /root/.pyenv under
a 0o700 /root), so everything a run needs is imported while still root: `warm_up()` does a few real
runs (scan, cleanup with and without a config file, real deletion, history, lock, JSON and text
output, a usage error, --help) on a throw-away tree of its own, and imports by name the codecs that
only paths the warm-up does not take look up (filelock reads /proc files as ascii when it checks a
lock file owned by someone else). `drop_privileges()` then becomes the user for good.

Two ways to use it:
- in a forked child: `warm_up()` in the parent (once per process), `drop_privileges(uid, gid)` in
  the child (tests/reliability/support.py's run_as, tests/unit/test_listing.py);
- in a separate `python -c` process: `become_prelude(uid, gid)` is source code that does both at
  the start of that process (tests/integration/helpers.py's preludes).
"""

from __future__ import annotations

import contextlib
import ctypes
import encodings.ascii
import encodings.latin_1
import encodings.utf_8
import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

NOBODY = 65534

PR_SET_DUMPABLE = 4
_LIBC = ctypes.CDLL(None)
_CODECS = (encodings.ascii, encodings.latin_1, encodings.utf_8)
_TESTS_DIR = os.fspath(Path(__file__).resolve().parent.parent)
_WARMED = False


def warm_up() -> None:
    """Import everything a run of the command line needs (once per process)."""
    global _WARMED
    if _WARMED:
        return
    from wa_sessions import cli

    scratch = Path(tempfile.mkdtemp(prefix="wa-sessions-warm-up-"))
    try:
        plain = scratch / "plain"
        tenant = plain / "company_1"
        tenant.mkdir(parents=True)
        (tenant / "creds.json").write_text('{"nextPreKeyId": 3}')
        (tenant / "session-1.0.json").write_text("{}")
        os.utime(tenant / "session-1.0.json", (0, 0))
        configured = scratch / "configured"
        tenant = configured / "root" / "company_0"
        tenant.mkdir(parents=True)
        old = time.time() - 100 * 86400
        for name in ("creds.json", "session-1.0.json", "sender-key-1@g.us--2--0.json"):
            (tenant / name).write_text('{"nextPreKeyId": 2, "me": {"id": "3:1@s.whatsapp.net"}}')
            os.utime(tenant / name, (old, old))
        config = configured / "config.yaml"
        config.write_text("state_dir: " + json.dumps(os.fspath(configured / "state")) + "\n")
        configured_run = ["cleanup", "--root", str(configured / "root"), "--config", str(config), "--json"]
        for args in (
            ["scan", "--root", str(plain)],
            ["scan", "--root", str(plain), "--json"],
            ["cleanup", "--root", str(plain), "--dry-run", "--verbose"],
            ["cleanup", "--root", str(plain), "--json"],
            ["cleanup", "--root", str(plain)],
            ["cleanup", "--bogus"],
            ["--help"],
            configured_run,
            [*configured_run, "--dry-run"],
        ):
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                cli.run(args)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _WARMED = True


def drop_privileges(uid: int, gid: int) -> None:
    """Become uid/gid for good, with no supplementary group; dumpable again, as after an exec, so
    that /proc/self stays usable."""
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    _LIBC.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)


def become_prelude(uid: int, gid: int) -> str:
    """Python source that warms up as root, then becomes uid/gid (the start of a `python -c` child)."""
    return (
        "import sys as _sys\n"
        f"_sys.path.insert(0, {_TESTS_DIR!r})\n"
        "from support.privileges import drop_privileges as _drop, warm_up as _warm_up\n"
        f"_sys.path.remove({_TESTS_DIR!r})\n"
        "_warm_up()\n"
        f"_drop({uid}, {gid})\n"
    )


def chown_tree(path: Path, uid: int, gid: int) -> None:
    """Give `path` and everything below it (symlinks themselves, not followed) to uid/gid."""
    os.chown(path, uid, gid, follow_symlinks=False)
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)
