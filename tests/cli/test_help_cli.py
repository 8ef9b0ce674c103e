"""--help of every command: ends with its exit codes (as the README's table says), readable
metavars, -v only where it changes something; -q with -v is a usage error; -n is --dry-run."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from wa_sessions import cli

REPOSITORY = Path(__file__).resolve().parents[2]
DAY = 86400
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli.app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _commands(group: Any = None, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command of the app (config's subcommands too), with its click object."""
    group = group if group is not None else typer.main.get_command(cli.app)
    for name, command in group.commands.items():
        if getattr(command, "commands", None):
            yield from _commands(command, (*prefix, name))
        else:
            yield (*prefix, name), command


COMMANDS = sorted(words for words, _ in _commands())


def _readme_exit_codes() -> dict[str, dict[int, str]]:
    """The README's "Exit codes, command by command" table: command -> {code: meaning}."""
    text = (REPOSITORY / "README.md").read_text()
    section = text.split("## Exit codes, command by command", 1)[1].split("\n## ", 1)[0]
    table: dict[str, dict[int, str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`"):
            table[cells[0].strip("`")] = {
                code: cell.replace("`", "") for code, cell in enumerate(cells[1:]) if cell != "—"
            }
    return table


def test_every_command_is_listed() -> None:
    names = {" ".join(words) for words in COMMANDS}
    assert {"scan", "cleanup", "report", "config validate", "config generate"} <= names


@pytest.mark.parametrize("words", COMMANDS, ids=" ".join)
def test_help_ends_with_the_exit_codes_of_the_readme_table(words: tuple[str, ...]) -> None:
    code, stdout, _ = invoke(*words, "--help")
    assert code == 0
    lines = stdout.rstrip().splitlines()
    heading = max(index for index, line in enumerate(lines) if line.strip() == "Exit codes:")
    listed = {}
    for line in lines[heading + 1 :]:
        match = re.fullmatch(r"\s+([0-3])  (\S.*)", line)
        assert match, f"not an exit code line at the end of the help: {line!r}"
        listed[int(match.group(1))] = match.group(2)
    assert listed == _readme_exit_codes()[" ".join(words)]
    assert {0, 2} <= set(listed)


@pytest.mark.parametrize("words", [(), *COMMANDS], ids=lambda words: " ".join(words) or "top")
def test_help_has_readable_metavars(words: tuple[str, ...]) -> None:
    code, stdout, _ = invoke(*words, "--help")
    assert code == 0
    assert not re.search(r"<[a-z]", stdout) and "list[" not in stdout, stdout
    for option, metavar in (
        ("--company", "ID"),
        ("--config", "FILE"),
        ("--root", "PATH"),
        ("--jobs", "N"),
        ("--fail-on", "LEVEL"),
        ("--output", "FILE"),
    ):
        if re.search(rf"{option}\b", stdout):
            assert f"{option} {metavar}" in stdout, (words, option)


# What --verbose changes (wa_sessions/output/): every deleted file and each tenant's problems
# under a cleanup command, the file written by report --output. Nothing for scan and config.
VERBOSE_OFFERED = {"cleanup", "emergency-cleanup", "multitenant-cleanup", "report"}


@pytest.mark.parametrize("words", COMMANDS, ids=" ".join)
def test_verbose_is_offered_only_where_it_changes_something(words: tuple[str, ...]) -> None:
    stdout = invoke(*words, "--help")[1]
    assert ("--verbose" in stdout) == (" ".join(words) in VERBOSE_OFFERED)


def _tenant(root: Path) -> Path:
    folder = root / "company_1"
    folder.mkdir(parents=True)
    (folder / "creds.json").write_text(json.dumps({"nextPreKeyId": 2}))
    old = time.time() - 30 * DAY
    for index in range(3):
        path = folder / f"session-1555000000{index}.0.json"
        path.write_text("{}")
        os.utime(path, (old, old))
    return folder


@pytest.mark.parametrize("words", [("scan",), ("config", "show"), ("config", "validate")], ids=" ".join)
def test_hidden_verbose_is_still_accepted_and_changes_nothing(words: tuple[str, ...], tmp_path: Path) -> None:
    _tenant(tmp_path / "root")

    def shown(*flags: str) -> tuple[int, list[str], str]:
        code, stdout, stderr = invoke(*words, "--root", str(tmp_path / "root"), *flags)
        return code, [line for line in stdout.splitlines() if not line.startswith("disk: ")], stderr

    plain = shown()
    assert plain[0] == 0
    for flag in ("--verbose", "-v"):
        assert shown(flag) == plain


@pytest.mark.parametrize(
    "words",
    [words for words in COMMANDS if " ".join(words) not in ("demo", "config generate")],
    ids=" ".join,
)
def test_quiet_with_verbose_is_a_one_line_usage_error(words: tuple[str, ...], tmp_path: Path) -> None:
    folder = _tenant(tmp_path / "root")
    before = sorted(path.name for path in folder.iterdir())
    for flags in (("-q", "-v"), ("--verbose", "--quiet")):
        paths = ("1/pre-key-1.json",) if words == ("explain",) else ()  # explain needs a PATH
        code, stdout, stderr = invoke(*words, *paths, "--root", str(tmp_path / "root"), *flags)
        assert (code, stdout) == (2, "")
        (line,) = stderr.splitlines()
        assert line.startswith("wa-sessions: ") and "--quiet and --verbose" in line
    assert sorted(path.name for path in folder.iterdir()) == before


@pytest.mark.parametrize("command", ["cleanup", "emergency-cleanup", "multitenant-cleanup"])
def test_n_is_short_for_dry_run(command: str, tmp_path: Path) -> None:
    folder = _tenant(tmp_path / "root")
    extra = ["--company", "1"] if command == "emergency-cleanup" else ["--force"] * (command != "cleanup")
    long = invoke(command, "--root", str(tmp_path / "root"), "--json", "--dry-run", *extra)
    short = invoke(command, "--root", str(tmp_path / "root"), "--json", "-n", *extra)
    assert long[0] == short[0] == 0
    documents = [json.loads(run[1]) for run in (long, short)]
    for document in documents:
        document.pop("generated_at")
    assert documents[0] == documents[1] and documents[1]["dry_run"] is True
    assert len(list(folder.iterdir())) == 4


def test_n_is_short_for_dry_run_of_purge_stale_dirs(tmp_path: Path) -> None:
    _tenant(tmp_path / "root")
    code, stdout, _ = invoke(
        "emergency-cleanup",
        "--root",
        str(tmp_path / "root"),
        "--purge-stale-dirs",
        "--older-than",
        "1d",
        "-n",
    )
    assert code == 0 and "[dry-run]" in stdout and (tmp_path / "root" / "company_1").is_dir()


def test_every_dry_run_option_has_n() -> None:
    for words, command in _commands():
        for parameter in command.params:
            if "--dry-run" in parameter.opts:
                assert "-n" in parameter.opts, words


# --- start-up: `run` turns only the named command into a click command ---------------------------

TOP_LEVEL = sorted({words[0] for words in COMMANDS})


def _run_with(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], whole: bool, args: list[str]
) -> tuple[int, str, str]:
    if whole:
        monkeypatch.setattr(cli, "app_for", lambda _args: cli.app)
    code = cli.run(args)
    captured = capsys.readouterr()
    monkeypatch.undo()
    # the error lines carry the time of day (off a terminal): only the second may differ
    return code, captured.out, re.sub(r"\d\d:\d\d:\d\dZ", "T", captured.err)


@pytest.mark.parametrize("command", TOP_LEVEL)
@pytest.mark.parametrize("rest", [["--help"], ["--no-such-option"], ["--jobs", "x"], ["extra", "words"]])
def test_a_command_alone_says_what_the_whole_app_says(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str, rest: list[str]
) -> None:
    args = [command, *rest]
    assert _run_with(monkeypatch, capsys, False, args) == _run_with(monkeypatch, capsys, True, args)


@pytest.mark.parametrize("command", [c for c in TOP_LEVEL if c != "config"])
def test_run_builds_only_the_named_command(command: str) -> None:
    narrow = cli.app_for([command, "--help"])
    assert [
        typer.main.get_command_name(info.callback.__name__)
        if info.name is None and info.callback
        else info.name
        for info in narrow.registered_commands
    ] == [command]
    assert narrow.registered_groups == []
    assert cli.app_for([]) is cli.app
    assert cli.app_for(["--help"]) is cli.app
    assert cli.app_for(["scna"]) is cli.app
    assert len(cli.app.registered_commands) > 1  # the app itself untouched
