"""Bad input never crashes (issue 5, item 5).

Property-based: random command lines, random YAML configs (plausible keys with hostile values,
and raw text), random environments. Whatever comes in, the result is exit 0, 1, 2 or 3; never a
traceback or an internal error; an exit 2 is exactly one line on stderr and leaves the tree as it
was; and no input, however odd, deletes a protected file.

Most examples run in-process (`cli.run(argv)`, the entry point's own function) for speed; a
sample runs as real processes, with byte strings that are not UTF-8 in argv and the environment.
Every example works on a fresh copy of a small tree, from a scratch working directory (a relative
`--output` or `state_dir` lands there).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, seed, settings
from hypothesis import strategies as st

from wa_sessions import cli

from .support import FIGURES, SEED, clean_env, command, put, snapshot

EXAMPLES = int(os.environ.get("WA_RELIABILITY_EXAMPLES", "150"))
PROCESS_EXAMPLES = int(os.environ.get("WA_RELIABILITY_PROCESS_EXAMPLES", "20"))
PROTECTED = (
    "creds.json",
    "creds.json.bak",
    "app-state-sync-key-AAAAAB3x.json",
    "app-state-sync-version-regular_high.json",
    "lid-mapping-15550000000.json",
)
COMMANDS = [
    "scan",
    "cleanup",
    "emergency-cleanup",
    "multitenant-cleanup",
    "report",
    "config",
    "show",
    "validate",
]
OPTIONS = [
    "--root",
    "--config",
    "--json",
    "--quiet",
    "-q",
    "--verbose",
    "-v",
    "--company",
    "--dry-run",
    "--fail-on",
    "--jobs",
    "-j",
    "--force",
    "--purge-stale-dirs",
    "--include-paired",
    "--older-than",
    "--yes",
    "-y",
    "--no-backup",
    "--format",
    "--output",
    "-o",
    "--help",
    "--version",
    "--show-completion",
    "--",
    "-",
    "--bogus",
]
VALUES = [
    "ROOT",
    "ROOT/company_1",
    "ROOT/../outside",
    "/nonexistent",
    "",
    " ",
    ".",
    "..",
    "../..",
    "company_1",
    "1",
    "company_*",
    "0",
    "-1",
    "99999999999999999999",
    "1.5",
    "10m",
    "0s",
    "30d",
    "2w",
    "abc",
    "warning",
    "danger",
    "json",
    "markdown",
    "prometheus",
    "table",
    "report.out",
    "sub/dir/report.out",
    "ROOT/company_1/creds.json",
    "a\nb",
    "é",
    "\u202e",
    "%s%n",
    "{}",
    "[",
    "*",
    "CONFIG",
]
# Each leaf: (plausible values, hostile values). A generated config takes plausible values
# everywhere but at a few leaves, so that a hostile value is not hidden behind another key's error.
DURATIONS = (
    ["14d", "3d", "1s", "0s", "10m", "2w"],
    ["-1d", "1.5d", "99999999999999w", "14 d", "d", 5, -5, 1.5, True, None, [], {}],
)
COUNTS = ([0, 1, 20, 50], [-1, 2**64, "5", 1.5, None, True, [1]])
HOSTILE_LEVELS = [1, 0, -3, 175, "x", None, 10**30, 150.5]
KNOWN_KEYS: dict[str, Any] = {
    "root": (["ROOT"], ["ROOT\x00x", "/nonexistent", "", "ROOT/company_1/creds.json", "ROOT/company_1", "ROOT/../outside", 5]),
    "tenant_pattern": (["company_*", "*", "company_1"], ["", "/", ".*", "[", "company_[", "**", "\x00", "c*o*", "..", 7]),
    "state_dir": (["state", "ROOT/.wa-sessions", None], ["ROOT/company_1/creds.json", "x\x00y", "", "ROOT/company_1", "/proc/self", 3]),
    "rules": {
        "session": {"max_age": DURATIONS, "keep_newest": COUNTS},
        "sender-key": {"max_age": DURATIONS},
        "sender_key": {"max_age": DURATIONS},
        "pre-key": {"keep_newest": COUNTS, "max_age": DURATIONS},
        "sender-key-memory": {"max_age": DURATIONS},
        "identity-key": {"keep_newest": COUNTS},
    },
    "emergency": {"rules": {"session": {"max_age": DURATIONS}, "pre-key": {"keep_newest": COUNTS}}},
    "thresholds": {level: ([default], HOSTILE_LEVELS) for level, default in (("warning", 150), ("critical", 170), ("trigger", 175), ("emergency", 180), ("danger", 185))},
    "auto": {"cooldown": DURATIONS},
    "locks": {"wait": (["0s", "1s"], [-1, "x", None])},
    "notify": {
        "webhook_url": (["http://127.0.0.1:9/hook", "http://user:SECRET@127.0.0.1:9/x?token=SECRET", None], ["not a url", "", "file:///etc/passwd", "http://[::1", "http://127.0.0.1:9/\x00", "http://127.0.0.1:99999/", 5]),
        "timeout": (["1s", "0s"], ["-1s", 0, "x"]),
    },
}  # fmt: skip
ENV_NAMES = [
    "WA_SESSIONS_ROOT", "WA_SESSIONS_STATE_DIR", "WA_SESSIONS_TENANT_PATTERN", "WA_SESSIONS_RULES__SESSION__MAX_AGE",
    "WA_SESSIONS_RULES__PRE_KEY__KEEP_NEWEST", "WA_SESSIONS_RULES__CREDS__MAX_AGE", "WA_SESSIONS_RULES",
    "WA_SESSIONS_THRESHOLDS__WARNING", "WA_SESSIONS_THRESHOLDS", "WA_SESSIONS_AUTO__COOLDOWN", "WA_SESSIONS_LOCKS__WAIT",
    "WA_SESSIONS_NOTIFY__WEBHOOK_URL", "WA_SESSIONS_NOTIFY__TIMEOUT", "WA_SESSIONS_EMERGENCY__RULES",
    "WA_SESSIONS_CONFIG", "WA_SESSIONS_BOGUS", "BAILEYS_SESSIONS_PATH", "NOTIFICATION_WEBHOOK", "NO_COLOR",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["14d", "0s", "-5d", "1h", "3", "10x", "", "null", "ROOT", "company_*", "*", "/", "..", "http://127.0.0.1:9/hook", "http://user:pw@127.0.0.1:9/x", "not a url", "\x00", "ROOT\x00x"]),
    st.text(max_size=12),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


@st.composite
def configs(draw: st.DrawFn, shape: Any = KNOWN_KEYS, hostility: int = 12) -> Any:
    """A mapping shaped like the config: known keys with plausible values, a few hostile ones
    (about one leaf in `hostility`), sometimes a misspelt or extra key, sometimes junk where a
    mapping belongs."""
    if isinstance(shape, tuple):
        plausible, hostile = shape
        if draw(st.integers(0, hostility)) == hostility:  # not 0: Hypothesis favours 0
            return draw(st.sampled_from(hostile) | values)
        return draw(st.sampled_from(plausible))
    if draw(st.integers(0, 3 * hostility)) == 3 * hostility:
        return draw(values)
    result: dict[Any, Any] = {}
    for key in draw(st.lists(st.sampled_from(sorted(shape)), unique=True, min_size=1, max_size=len(shape))):
        result[key] = draw(configs(shape[key], hostility))
    if draw(st.integers(0, 2 * hostility)) == 2 * hostility:  # a protected, unknown or made-up key
        extra = st.sampled_from(["creds", "lid-mapping", "app_state_sync_key", "unknown", "Root"])
        result[draw(extra | st.text(min_size=1, max_size=10))] = draw(values)
    return result


class Scratch:
    """A fresh copy of a small tree per example, and a working directory beside it."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="wa-bad-input-"))
        self.template = self.base / "template"
        self.template.mkdir()
        folder = self.template / "company_1"
        folder.mkdir()
        put(
            folder,
            "creds.json",
            0,
            json.dumps({"nextPreKeyId": 80, "me": {"id": "15550000000:1@s.whatsapp.net"}}),
        )
        for name in PROTECTED[1:]:
            put(folder, name, 500)
        for key_id in range(1, 80):
            put(folder, f"pre-key-{key_id}.json", 30)
        for index in range(5):
            put(folder, f"session-1666000000{index}.0.json", 20 if index % 2 else 1)
        put(folder, "sender-key-1@g.us--15550000000--1.json", 10)
        put(folder, "sender-key-memory-1@g.us.json", 10)
        (self.base / "outside").mkdir()
        put(self.base / "outside", "session-1.0.json", 30)
        self.count = 0

    @contextlib.contextmanager
    def example(self) -> Iterator[tuple[Path, Path]]:
        self.count += 1
        work = self.base / f"example-{self.count}"
        root = work / "sessions"
        shutil.copytree(self.template, root, symlinks=True)
        cwd = os.getcwd()
        os.chdir(work)
        try:
            yield work, root
        finally:
            os.chdir(cwd)
            shutil.rmtree(work, ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(clean_env(values))
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def substitute(token: str, root: Path, config: Path) -> str:
    return token.replace("ROOT", str(root)).replace("CONFIG", str(config))


def run_in_process(argv: Sequence[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.run(list(argv))
    return code, out.getvalue(), err.getvalue()


def check(
    argv: Sequence[str], code: int, stdout: str, stderr: str, root: Path, before: dict[str, Any]
) -> None:
    context = f"seed {SEED}: wa-sessions {' '.join(map(repr, argv))} -> exit {code}\n{stderr}"
    assert code in (0, 1, 2, 3), context
    assert "Traceback" not in stderr and "internal error" not in stderr, context
    after = snapshot(root) if root.exists() else {}
    for name in PROTECTED:
        assert f"company_1/{name}" in after, f"{context}: protected {name} deleted"
    if code == 2:
        lines = stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("wa-sessions: "), f"{context}: not one line"
        assert after == before, f"{context}: exit 2 but the tree changed"
    informational = {"--help", "--version", "--show-completion"} & set(argv)
    if argv and argv[0] in COMMANDS and "--json" in argv and code in (0, 1) and not informational:
        json.loads(stdout)
    FIGURES[f"bad input: exit {code}"] += 1


HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

arguments = st.lists(
    st.one_of(
        st.sampled_from(OPTIONS),
        st.sampled_from(VALUES),
        st.text(max_size=10).filter(lambda t: "\x00" not in t),
    ),
    max_size=8,
)


@seed(SEED)
@HYPOTHESIS
@given(
    command_name=st.sampled_from([*COMMANDS, "--bogus", ""]),
    with_root=st.booleans(),
    rest=arguments,
    config=configs(),
)
def test_random_command_lines_exit_0_1_2_or_3_with_one_line_errors(
    command_name: str, with_root: bool, rest: list[str], config: Any
) -> None:
    scratch = _scratch()
    with scratch.example() as (work, root):
        config_path = work / "config.yaml"
        config_path.write_text(
            yaml.safe_dump(_substituted(config, root)) if not isinstance(config, str) else config
        )
        tokens = [command_name, *(["--root", "ROOT"] if with_root else []), *rest]
        argv = [substitute(token, root, config_path) for token in tokens if token]
        before = snapshot(root)
        code, stdout, stderr = run_in_process(argv)
        check(argv, code, stdout, stderr, root, before)
        FIGURES["bad input: random command lines"] += 1


@seed(SEED)
@HYPOTHESIS
@example(config={"root": "ROOT\x00x"}, command_name="cleanup", json_output=True)
@example(config={"root": "ROOT", "state_dir": "x\x00y"}, command_name="cleanup", json_output=False)
@example(config={"root": "ROOT", "tenant_pattern": "company\x00*"}, command_name="scan", json_output=True)
@example(
    config={"root": "ROOT", "notify": {"webhook_url": "http://127.0.0.1:9/\x00"}},
    command_name="multitenant-cleanup",
    json_output=True,
)
@example(
    config={
        "root": "ROOT",
        "thresholds": {"warning": 1, "critical": 2, "trigger": 3, "emergency": 4, "danger": 5},
        "notify": {"webhook_url": "http://u:p@[::1"},
    },
    command_name="multitenant-cleanup",
    json_output=False,
)
@example(config="root: !!python/object/apply:os.system ['true']", command_name="cleanup", json_output=False)
@example(config="a: &a [*a, *a]\nroot: *a", command_name="cleanup", json_output=False)
@example(
    config={"root": "ROOT", "rules": {"session": {"max_age": "99999999999999w"}}},
    command_name="cleanup",
    json_output=True,
)
@given(
    config=st.one_of(configs(), st.text(max_size=60)),
    command_name=st.sampled_from(
        ["cleanup", "scan", "multitenant-cleanup", "emergency-cleanup", "config validate", "report"]
    ),
    json_output=st.booleans(),
)
def test_random_yaml_configs_never_crash_and_never_delete_on_exit_2(
    config: Any, command_name: str, json_output: bool
) -> None:
    scratch = _scratch()
    with scratch.example() as (work, root):
        config_path = work / "config.yaml"
        if isinstance(config, dict):
            config.setdefault("root", str(root))
            text = yaml.safe_dump(_substituted(config, root), allow_unicode=True)
        else:
            text = str(config)
        config_path.write_text(text, encoding="utf-8", errors="surrogateescape")
        argv = [*command_name.split(), "--config", str(config_path)]
        if command_name.startswith("multitenant"):
            argv.append("--force")
        if json_output and not command_name.startswith("config"):
            argv.append("--json")
        before = snapshot(root)
        code, stdout, stderr = run_in_process(argv)
        check(argv, code, stdout, stderr, root, before)
        FIGURES["bad input: random YAML configs"] += 1


def _substituted(value: Any, root: Path) -> Any:
    if isinstance(value, str):
        return value.replace("ROOT", str(root))
    if isinstance(value, dict):
        return {key: _substituted(item, root) for key, item in value.items()}
    if isinstance(value, list):
        return [_substituted(item, root) for item in value]
    return value


env_values = st.one_of(
    st.sampled_from(
        [
            *VALUES,
            "14d",
            "{}",
            '{"session": {"max_age": "1s"}}',
            '{"creds": {"max_age": "1s"}}',
            "[1,2]",
            "null",
            "true",
        ]
    ),
    st.text(max_size=15).filter(lambda t: "\x00" not in t),
)


@seed(SEED)
@HYPOTHESIS
@given(
    env=st.dictionaries(st.sampled_from(ENV_NAMES), env_values, max_size=5),
    command_name=st.sampled_from(["cleanup", "scan", "multitenant-cleanup", "report", "config show"]),
)
def test_random_environments_never_crash_and_never_delete_on_exit_2(
    env: dict[str, str], command_name: str
) -> None:
    scratch = _scratch()
    with scratch.example() as (_, root):
        values = {name: value.replace("ROOT", str(root)) for name, value in env.items()}
        argv = [*command_name.split()]
        if "WA_SESSIONS_ROOT" not in values and "BAILEYS_SESSIONS_PATH" not in values:
            argv += ["--root", str(root)]
        before = snapshot(root)
        with environment(values):
            code, stdout, stderr = run_in_process(argv)
        check(argv, code, stdout, stderr, root, before)
        FIGURES["bad input: random environments"] += 1


# ---------------------------------------------------------------- real processes, bytes that are not UTF-8

raw_tokens = st.one_of(
    st.sampled_from([b"ROOT", b"--root", b"--json", b"--company", b"\xff\xfe", b"company_\xff", b"ROOT/\xff", b"--config", b"CONFIG", b"-", b"--dry-run", b"--verbose"]),
    st.binary(min_size=1, max_size=8).filter(lambda b: b"\x00" not in b),
)  # fmt: skip


@seed(SEED)
@settings(
    max_examples=PROCESS_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
@given(
    command_name=st.sampled_from([b"scan", b"cleanup", b"multitenant-cleanup", b"report", b"emergency-cleanup"]),
    rest=st.lists(raw_tokens, max_size=6),
    env=st.dictionaries(st.sampled_from([name.encode() for name in ENV_NAMES]), st.binary(max_size=10).filter(lambda b: b"\x00" not in b), max_size=3),
    config=st.binary(max_size=80),
)  # fmt: skip
def test_real_processes_survive_bytes_that_are_not_utf8_in_argv_env_and_config(
    command_name: bytes, rest: list[bytes], env: dict[bytes, bytes], config: bytes
) -> None:
    scratch = _scratch()
    with scratch.example() as (work, root):
        os.mkdir(os.fsencode(root) + b"/company_\xff")
        (work / "config.yaml").write_bytes(config)
        argv = [
            t.replace(b"ROOT", os.fsencode(root)).replace(b"CONFIG", os.fsencode(work / "config.yaml"))
            for t in [command_name, *rest]
        ]
        environ = {os.fsencode(k): os.fsencode(v) for k, v in clean_env().items()}
        environ.update({k: v.replace(b"ROOT", os.fsencode(root)) for k, v in env.items()})
        if not any(t == b"--root" for t in argv):
            argv += [b"--root", os.fsencode(root)]
        before = snapshot(root)
        FIGURES["wa-sessions processes run"] += 1
        result = subprocess.run(
            [os.fsencode(a) for a in command()] + argv,
            env=environ,
            capture_output=True,
            timeout=120,
            check=False,
            cwd=work,
        )
        stderr = result.stderr.decode("utf-8", "backslashreplace")
        shown = [os.fsdecode(a) for a in argv]
        check(
            shown, result.returncode, result.stdout.decode("utf-8", "backslashreplace"), stderr, root, before
        )
        FIGURES["bad input: real processes with bytes that are not UTF-8"] += 1


_SCRATCH: Scratch | None = None


def _scratch() -> Scratch:
    global _SCRATCH
    if _SCRATCH is None:
        _SCRATCH = Scratch()
    return _SCRATCH


def teardown_module() -> None:
    if _SCRATCH is not None:
        _SCRATCH.close()
