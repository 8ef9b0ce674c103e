"""The C listing (wa_sessions/_listing.c) releases the GIL around readdir/fstatat. Misusing one
listing from several threads (two threads iterating it, a close() from a third while one is
inside readdir) must raise a Python exception or be harmless, never free the DIR under a reader.

The hammering runs in a subprocess, so that a crash shows as a signal in its return code (and a
faulthandler traceback on its stderr) instead of killing pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import wa_sessions

pytest.importorskip("wa_sessions._listing", reason="the C listing was not built")

FILES = 20_000
ROUNDS = 12

HAMMER = r"""
import json, os, sys, threading, time
from wa_sessions._listing import listing

folder, files, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
expected = {f"session-{index}.0.json" for index in range(files)}
fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
figures = {"busy errors": 0, "other errors": [], "closes": 0}
lock = threading.Lock()  # guards `figures` only, never the listing


def open_descriptors():
    return len(os.listdir("/proc/self/fd"))


def drain(listed, names, both=None, started=None, after=0):
    # next() until the end; a RuntimeError (another thread is inside next()) is counted and retried
    try:
        _drain(listed, names, both, started, after)
    finally:
        if started is not None:
            started.set()  # whatever happened, the closer does not wait for ever


def _drain(listed, names, both, started, after):
    while True:
        try:
            name = next(listed)[0]
        except StopIteration:
            return
        except RuntimeError:
            with lock:
                figures["busy errors"] += 1
            time.sleep(0)  # let the thread inside next() have the GIL back, rather than spin
            continue
        except Exception as error:
            with lock:
                figures["other errors"].append(repr(error))
            return
        names.append(name)
        if both is not None:
            both.append(name)
            if len(both) >= after:
                started.set()


def check(names, context, complete):
    assert len(names) == len(set(names)), f"{context}: an entry was delivered twice"
    assert set(names) <= expected, f"{context}: names not in the folder: {sorted(set(names) - expected)[:5]}"
    if complete:
        assert set(names) == expected, f"{context}: {len(expected - set(names))} entries missing"


baseline = open_descriptors()
for round_number in range(rounds):
    # two threads iterate one listing: every entry exactly once between them, and RuntimeErrors
    listed = listing(fd)
    first, second = [], []
    threads = [threading.Thread(target=drain, args=(listed, out)) for out in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    check(first + second, f"round {round_number}, two readers", complete=True)

    # two threads iterate one listing and a third closes it part-way, while they are inside it
    listed = listing(fd)
    first, second, both = [], [], []
    started = threading.Event()
    after = 1 + round_number * 1_361 % (files // 2)
    threads = [threading.Thread(target=drain, args=(listed, out, both, started, after)) for out in (first, second)]
    for thread in threads:
        thread.start()
    started.wait()
    listed.close()  # most likely while a reader is inside readdir or fstatat, outside the GIL
    figures["closes"] += 1
    for thread in threads:
        thread.join()
    check(first + second, f"round {round_number}, closed part-way", complete=False)
    try:
        next(listed)
    except StopIteration:
        pass
    else:
        raise AssertionError("a closed listing went on listing")
    listed.close()  # closing twice is harmless
    assert open_descriptors() == baseline, f"round {round_number}: the listing's descriptor leaked"

assert not figures["other errors"], figures["other errors"][:5]
print(json.dumps(figures))
"""


def test_one_listing_shared_by_threads_raises_instead_of_crashing(tmp_path: Path) -> None:
    folder = tmp_path / "company_1"
    folder.mkdir()
    for index in range(FILES):  # empty: what is listed is names and lstat, not content
        os.close(os.open(folder / f"session-{index}.0.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL))
    package_parent = str(Path(wa_sessions.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([package_parent, os.environ.get("PYTHONPATH", "")])}

    ran = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", HAMMER, str(folder), str(FILES), str(ROUNDS)],
        capture_output=True,
        text=True,
        errors="backslashreplace",
        env=env,
        timeout=300,
        check=False,
    )

    assert ran.returncode == 0, (
        f"the hammering process ended with {ran.returncode}"
        f"{' (killed by signal ' + str(-ran.returncode) + ')' if ran.returncode < 0 else ''}:\n"
        f"{ran.stderr[-4000:]}"
    )
    figures: dict[str, Any] = json.loads(ran.stdout)
    assert figures["busy errors"] > 0, f"two threads never met inside one listing: {figures}"
    assert figures["closes"] == ROUNDS
