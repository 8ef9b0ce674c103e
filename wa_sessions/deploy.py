"""What a pip install needs to be deployed: the documented configuration, the crontab and the
systemd units, shipped as package data (wa_sessions/examples/; the repository's
config.example.yaml, crontab.example and contrib/systemd are links to them), and the checks of
`config validate` on the paths a run will need.

The crontab and the units name the executable as /usr/local/bin/wa-sessions; `crontab` and
`systemd_units` put the real path of the running one there instead.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from wa_sessions.errors import UsageError

EXAMPLE_EXECUTABLE = "/usr/local/bin/wa-sessions"
PROGRAM = "wa-sessions"


def _examples() -> Traversable:
    return resources.files("wa_sessions") / "examples"


def config_example() -> str:
    """config.example.yaml: every key with its default, documented."""
    return (_examples() / "config.example.yaml").read_text(encoding="utf-8")


def executable_path(argv0: str | None = None, search_path: str | None = None) -> str:
    """The command line that runs this wa-sessions, as a cron job or ExecStart= writes it.

    Given the program name as invoked (`sys.argv[0]` by default), return its absolute path when it
    is the `wa-sessions` executable (a symlink is kept, not resolved: pipx's ~/.local/bin link
    survives upgrades of the venv behind it), else the `wa-sessions` found on PATH, else
    `<python> -m wa_sessions`. Quoted for a shell (and for systemd, which reads the same quotes).
    """
    invoked = sys.argv[0] if argv0 is None else argv0
    if os.path.basename(invoked) == PROGRAM:
        found = invoked if os.sep in invoked else shutil.which(invoked, path=search_path)
        if found and os.access(found, os.X_OK):
            return shlex.quote(os.path.abspath(found))
    found = shutil.which(PROGRAM, path=search_path)
    if found:
        return shlex.quote(os.path.abspath(found))
    return shlex.join([os.path.abspath(sys.executable), "-m", "wa_sessions"])


def _with_executable(text: str, executable: str) -> str:
    return text.replace(EXAMPLE_EXECUTABLE, executable)


def crontab(executable: str) -> str:
    """crontab.example with `executable` in every job."""
    return _with_executable((_examples() / "crontab.example").read_text(encoding="utf-8"), executable)


def systemd_units(executable: str) -> dict[str, str]:
    """The .service and .timer files of contrib/systemd, by name, with `executable` in ExecStart=."""
    folder = _examples() / "systemd"
    return {
        unit.name: _with_executable(unit.read_text(encoding="utf-8"), executable)
        for unit in sorted(folder.iterdir(), key=lambda unit: unit.name)
        if unit.name.endswith((".service", ".timer"))
    }


def write_systemd_units(directory: Path, executable: str) -> list[Path]:
    """Write the units into `directory` (which must exist), never over an existing file; return
    their paths. Raise UsageError if the directory is missing or a unit is already there
    (nothing written), OSError if one cannot be written."""
    if not directory.is_dir():
        raise UsageError(f"--systemd: {directory} is not a directory")
    units = systemd_units(executable)
    present = [name for name in units if os.path.lexists(directory / name)]
    if present:
        raise UsageError(f"--systemd: {directory / present[0]} exists; remove it or choose another folder")
    written = []
    for name, text in units.items():
        path = directory / name
        with open(path, "x", encoding="utf-8") as unit:
            unit.write(text)
        os.chmod(path, 0o644)
        written.append(path)
    return written


def path_problems(root: Path, state_dir: Path, state_dir_is_default: bool) -> list[str]:
    """What keeps a run from using these paths, one message per key naming it: `root` must be an
    existing directory; the state dir must be a directory or creatable (its nearest existing
    ancestor a directory we may write in). Nothing is created."""
    problems = []
    if not root.exists():
        problems.append(f"root: {root} does not exist")
    elif not root.is_dir():
        problems.append(f"root: {root} is not a directory")
    key = f"state_dir (default {state_dir})" if state_dir_is_default else "state_dir"
    problem = _state_dir_problem(state_dir)
    if problem is not None and not (state_dir_is_default and problems):
        problems.append(f"{key}: {problem}")
    return problems


def _state_dir_problem(state_dir: Path) -> str | None:
    if state_dir.is_dir():
        return None if os.access(state_dir, os.W_OK | os.X_OK) else f"{state_dir} is not writable"
    if os.path.lexists(state_dir):
        return f"{state_dir} exists and is not a directory"
    ancestor = state_dir.absolute().parent
    while not os.path.lexists(ancestor):
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"cannot be created: {ancestor} is not a directory"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"cannot be created: {ancestor} is not writable"
    return None
