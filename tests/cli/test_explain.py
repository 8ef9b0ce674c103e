"""`wa-sessions explain`: the exact output for each rule and guard that can decide a file, the
document of `--json`, the path forms, and the one-line errors (exit 2). Through the command line
(`cli.run`) on a small real tree, the clock frozen (freezegun) and every mtime set from it."""

from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from freezegun import freeze_time
from support.cli import run_at

from wa_sessions import cli

NOW = "2030-01-15T12:00:00Z"
NOW_EPOCH = 1_894_708_800
HOUR = 3600
DAY = 86400
OWN = "15550000000"
G0 = "120363000000000000@g.us"
G1 = "120363000000000001@g.us"
OWN_KEY = f"sender-key-{G0}--{OWN}--2.json"
OTHER_KEY = f"sender-key-{G1}--15550000001--0.json"

CONFIG_YAML = """\
rules:
  session: {max_age: 14d}
  sender-key: {max_age: 3d}
  pre-key: {keep_newest: 2}
emergency:
  rules:
    session: {max_age: 3d}
    sender-key: {max_age: 1d}
    pre-key: {keep_newest: 1}
"""


def put(folder: Path, name: str, age: float, content: str = "{}") -> None:
    path = folder / name
    path.write_text(content)
    os.utime(path, (NOW_EPOCH - age, NOW_EPOCH - age))


@dataclass(frozen=True)
class Tree:
    root: Path
    config: Path

    def run(self, *args: str) -> tuple[int, str, str]:
        """`wa-sessions explain ARGS --root ROOT --config CONFIG` at NOW: exit code, stdout and
        stderr with the root shown as <ROOT>."""
        return run_at(
            ["explain", *args, "--root", str(self.root), "--config", str(self.config)], NOW, self.root
        )


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    """company_1: paired (creds.json names OWN; nextPreKeyId 7, firstUnuploadedPreKeyId 4), a
    key of every kind of decision. company_2: creds.json unparseable, old pre-keys and an old
    sender key."""
    root = tmp_path / "sessions"
    t1 = root / "company_1"
    t1.mkdir(parents=True)
    creds = {"me": {"id": f"{OWN}:2@s.whatsapp.net"}, "nextPreKeyId": 7, "firstUnuploadedPreKeyId": 4}
    put(t1, "creds.json", HOUR, json.dumps(creds))
    put(t1, "app-state-sync-key-AAAAAB3x.json", 400 * DAY)
    put(t1, "identity-key-15550000001.0.json", 30 * DAY)
    for key_id in range(1, 9):
        put(t1, f"pre-key-{key_id}.json", 40 * DAY)
    put(t1, "session-15550000001.0.json", 20 * DAY)
    put(t1, "session-15550000001.0.json.bak", 20 * DAY)
    put(t1, "session-15550000002.0.json", 5 * DAY)
    put(t1, "session-15550000003.0.json", HOUR)
    put(t1, "session-15550000003.0.json.bak", 20 * DAY)
    put(t1, OWN_KEY, 5 * DAY)
    put(t1, f"sender-key-memory-{G0}.json", HOUR)
    put(t1, OTHER_KEY, 2 * DAY)
    put(t1, f"sender-key-memory-{G1}.json", HOUR)
    put(t1, "notes.txt", 30 * DAY, "hello")
    put(t1, ".cleanup.lock", DAY, "")
    (t1 / "link.json").symlink_to("creds.json")
    t2 = root / "company_2"
    t2.mkdir()
    put(t2, "creds.json", HOUR, "{")
    for key_id in range(1, 4):
        put(t2, f"pre-key-{key_id}.json", 40 * DAY)
    put(t2, f"sender-key-{G0}--15550000001--0.json", 5 * DAY)
    config = tmp_path / "wa-sessions.yaml"
    config.write_text(CONFIG_YAML)
    return Tree(root, config)


def block(path: str, company: str, category: str, rule: str, guard: str, cleanup: str, emergency: str) -> str:
    return (
        f"<ROOT>/{path}\n  company    {company}\n  category   {category}\n  rule       {rule}\n"
        f"  guard      {guard}\n  cleanup    {cleanup}\n  emergency  {emergency}\n"
    )


def explained(tree: Tree, *paths: str) -> str:
    code, stdout, stderr = tree.run(*paths)
    assert (code, stderr) == (0, "")
    return stdout


PROTECTED = "kept: protected category {}: never deleted, whatever the configuration"
SESSIONS = "cleanup max_age 14d; emergency max_age 3d"
PRE_KEYS = "cleanup keep_newest 2; emergency keep_newest 1"
SENDER_KEYS = "cleanup max_age 3d; emergency max_age 1d"


def test_a_protected_file_is_kept_by_the_floor_whatever_the_profile(tree: Tree) -> None:
    kept = PROTECTED.format("creds")
    guard = "protected category: no configuration can delete it"
    expected = block("company_1/creds.json", "1", "creds", "cleanup none; emergency none", guard, kept, kept)
    assert explained(tree, "1/creds.json") == expected
    kept = PROTECTED.format("app-state-sync-key")
    name = "app-state-sync-key-AAAAAB3x.json"
    expected = block(
        f"company_1/{name}", "1", "app-state-sync-key", "cleanup none; emergency none", guard, kept, kept
    )
    assert explained(tree, f"1/{name}") == expected


def test_a_category_without_a_rule_is_kept(tree: Tree) -> None:
    kept = "kept: no rule for identity-key"
    name = "identity-key-15550000001.0.json"
    expected = block(
        f"company_1/{name}", "1", "identity-key", "cleanup none; emergency none", "none", kept, kept
    )
    assert explained(tree, f"1/{name}") == expected


def test_an_old_session_is_deleted_with_the_reason_a_run_records(tree: Tree) -> None:
    expected = block(
        "company_1/session-15550000001.0.json",
        "1",
        "session",
        SESSIONS,
        "none",
        "delete: older than 14d: last used 20d ago",
        "delete: older than 3d: last used 20d ago",
    )
    assert explained(tree, "1/session-15550000001.0.json") == expected


def test_a_session_younger_than_max_age_says_its_age_and_the_limit(tree: Tree) -> None:
    expected = block(
        "company_1/session-15550000002.0.json",
        "1",
        "session",
        SESSIONS,
        "none",
        "kept: last used 5d ago, younger than max_age 14d",
        "delete: older than 3d: last used 5d ago",
    )
    assert explained(tree, "1/session-15550000002.0.json") == expected


def test_a_companion_goes_with_its_key_file_and_is_judged_by_it(tree: Tree) -> None:
    old = block(
        "company_1/session-15550000001.0.json.bak",
        "1",
        "session",
        SESSIONS,
        "companion of session-15550000001.0.json: judged and deleted with it",
        "delete: older than 14d: last used 20d ago (with session-15550000001.0.json)",
        "delete: older than 3d: last used 20d ago (with session-15550000001.0.json)",
    )
    young = block(  # the .bak is 20 days old, but its key file was used an hour ago
        "company_1/session-15550000003.0.json.bak",
        "1",
        "session",
        SESSIONS,
        "companion of session-15550000003.0.json: judged and deleted with it",
        "kept: companion of session-15550000003.0.json, judged with it: "
        "last used 1h ago, younger than max_age 14d",
        "kept: companion of session-15550000003.0.json, judged with it: "
        "last used 1h ago, younger than max_age 3d",
    )
    stdout = explained(tree, "1/session-15550000001.0.json.bak", "1/session-15550000003.0.json.bak")
    assert stdout == old + "\n" + young


def test_pre_keys_name_the_rule_or_the_guard_that_keeps_them(tree: Tree) -> None:
    """keep_newest 2 keeps ids 7-8 (emergency: 8); nextPreKeyId 7 guards id 6 and up,
    firstUnuploadedPreKeyId 4 guards 4 and up; ids 1-3 go."""
    newest = "pre-key id 6 >= nextPreKeyId-1 (6), newest pre-key guard"
    unuploaded = "pre-key id 5 >= firstUnuploadedPreKeyId (4), unuploaded pre-key guard"
    expected = [
        block(
            "company_1/pre-key-3.json",
            "1",
            "pre-key",
            PRE_KEYS,
            "none",
            "delete: pre-key id 3 beyond the newest 2 (ids 7–8 kept)",
            "delete: pre-key id 3 beyond the newest 1 (ids 8–8 kept)",
        ),
        block(
            "company_1/pre-key-5.json",
            "1",
            "pre-key",
            PRE_KEYS,
            unuploaded,
            f"kept: {unuploaded}",
            f"kept: {unuploaded}",
        ),
        block(
            "company_1/pre-key-6.json", "1", "pre-key", PRE_KEYS, newest, f"kept: {newest}", f"kept: {newest}"
        ),
        block(
            "company_1/pre-key-7.json",
            "1",
            "pre-key",
            PRE_KEYS,
            "pre-key id 7 >= nextPreKeyId-1 (6), newest pre-key guard",
            "kept: pre-key id 7 is within the newest 2 by id",
            "kept: pre-key id 7 >= nextPreKeyId-1 (6), newest pre-key guard",
        ),
    ]
    stdout = explained(tree, "1/pre-key-3.json", "1/pre-key-5.json", "1/pre-key-6.json", "1/pre-key-7.json")
    assert stdout == "\n".join(expected)


def test_unreadable_creds_keep_every_pre_key_and_every_sender_key(tree: Tree) -> None:
    no_pre_key = "kept: creds.json is unparseable: no pre-key pruned in this run"
    no_sender_key = (
        "kept: sender keys not deleted: creds.json is unparseable and names no account, "
        "so our own sender keys cannot be told apart"
    )
    name = f"sender-key-{G0}--15550000001--0.json"
    expected = [
        block(
            "company_2/pre-key-1.json",
            "2",
            "pre-key",
            PRE_KEYS,
            "creds.json is unparseable: no pre-key pruned",
            no_pre_key,
            no_pre_key,
        ),
        block(
            f"company_2/{name}",
            "2",
            "sender-key",
            SENDER_KEYS,
            "creds.json is unparseable and names no account: no sender key deleted",
            no_sender_key,
            no_sender_key,
        ),
    ]
    assert explained(tree, "2/pre-key-1.json", f"2/{name}") == "\n".join(expected)


def test_our_own_sender_key_and_its_memory_file_go_together(tree: Tree) -> None:
    memory = f"sender-key-memory-{G0}.json"
    expected = [
        block(
            f"company_1/{OWN_KEY}",
            "1",
            "sender-key",
            SENDER_KEYS,
            f"our own sender key: deleted together with its partner {memory}, that one first",
            "delete: older than 3d: last used 5d ago",
            "delete: older than 1d: last used 5d ago",
        ),
        block(
            f"company_1/{memory}",
            "1",
            "sender-key-memory",
            "cleanup none; emergency none",
            f"partner of our own sender key {OWN_KEY}: deleted with it, first",
            f"delete: partner of our own sender key {OWN_KEY}, deleted in this run",
            f"delete: partner of our own sender key {OWN_KEY}, deleted in this run",
        ),
    ]
    assert explained(tree, f"1/{OWN_KEY}", f"1/{memory}") == "\n".join(expected)


def test_another_members_sender_key_needs_no_partner(tree: Tree) -> None:
    memory = f"sender-key-memory-{G1}.json"
    kept_memory = (
        "kept: no rule for sender-key-memory: it goes only with our own sender key of its group, "
        "and none is deleted in this run"
    )
    expected = [
        block(
            f"company_1/{OTHER_KEY}",
            "1",
            "sender-key",
            SENDER_KEYS,
            "none",
            "kept: last used 2d ago, younger than max_age 3d",
            "delete: older than 1d: last used 2d ago",
        ),
        block(
            f"company_1/{memory}",
            "1",
            "sender-key-memory",
            "cleanup none; emergency none",
            "none",
            kept_memory,
            kept_memory,
        ),
    ]
    assert explained(tree, f"1/{OTHER_KEY}", f"1/{memory}") == "\n".join(expected)


def test_unknown_entries_symlinks_and_our_own_dot_entries_are_never_deleted(tree: Tree) -> None:
    unknown = "kept: unknown entry (not a Baileys key file name): never deleted, reported by scan"
    symlink = "kept: not a regular file (symlink): only regular files are deleted, symlinks never followed"
    own = "kept: the tool's own entry (a dot-entry): never counted, never deleted"
    none = "cleanup none; emergency none"
    expected = [
        block(
            "company_1/notes.txt", "1", "unknown", none, "unknown entries are never deleted", unknown, unknown
        ),
        block(
            "company_1/link.json",
            "1",
            "unknown",
            none,
            "only regular files are deleted; symlinks are never followed",
            symlink,
            symlink,
        ),
        block("company_1/.cleanup.lock", "1", "-", none, "dot-entries are the tool's own", own, own),
    ]
    assert explained(tree, "1/notes.txt", "1/link.json", "1/.cleanup.lock") == "\n".join(expected)


def test_every_deletion_explained_is_one_a_dry_run_makes_with_the_same_reason(tree: Tree) -> None:
    """explain and `cleanup --dry-run` agree, file by file, on what goes and why."""
    stdout, stderr = io.StringIO(), io.StringIO()
    argv = ["cleanup", "--dry-run", "--json", "--root", str(tree.root), "--config", str(tree.config)]
    with freeze_time(NOW), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        assert cli.run(argv) == 0
    planned = {
        f"{tenant['company']}/{deleted['file']}": deleted["reason"]
        for tenant in json.loads(stdout.getvalue())["tenants"]
        for deleted in tenant["deleted"]
    }
    files = sorted(
        f"{folder.name[len('company_') :]}/{path.name}"
        for folder in tree.root.iterdir()
        for path in folder.iterdir()
    )
    code, document, errors = tree.run("--json", *files)
    assert (code, errors) == (0, "")
    said = {f"{item['company']}/{item['file']}": item["cleanup"] for item in json.loads(document)["files"]}
    assert {name: verdict["reason"] for name, verdict in said.items() if verdict["delete"]} == planned
    assert len(planned) == 7  # pre-keys 1-3, the old session and its .bak, our own key and its partner


def test_json_document(tree: Tree) -> None:
    code, stdout, stderr = tree.run("--json", "1/session-15550000002.0.json", "1/pre-key-6.json")
    assert (code, stderr) == (0, "")
    document = json.loads(stdout)
    categories = {
        "creds": 1,
        "app-state-sync-key": 1,
        "app-state-sync-version": 0,
        "lid-mapping": 0,
        "pre-key": 8,
        "session": 5,
        "sender-key": 2,
        "sender-key-memory": 2,
        "identity-key": 1,
        "device-list": 0,
        "tctoken": 0,
        "unknown": 2,
    }
    assert document == {
        "schema": 1,
        "command": "explain",
        "root": "<ROOT>",
        "generated_at": NOW,
        "tenants": [
            {
                "company": "1",
                "path": "<ROOT>/company_1",
                "files": 22,
                "bytes": document["tenants"][0]["bytes"],  # a symlink's size depends on its target's name
                "status": "healthy",
                "categories": categories,
                "problems": ["not a regular file (symlink): link.json", "unknown file (kept): notes.txt"],
            }
        ],
        "files": [
            {
                "path": "<ROOT>/company_1/session-15550000002.0.json",
                "company": "1",
                "file": "session-15550000002.0.json",
                "category": "session",
                "cleanup": {"delete": False, "reason": "kept: last used 5d ago, younger than max_age 14d"},
                "emergency": {"delete": True, "reason": "older than 3d: last used 5d ago"},
                "rule": {"cleanup": "max_age 14d", "emergency": "max_age 3d"},
                "guard": None,
            },
            {
                "path": "<ROOT>/company_1/pre-key-6.json",
                "company": "1",
                "file": "pre-key-6.json",
                "category": "pre-key",
                "cleanup": {
                    "delete": False,
                    "reason": "kept: pre-key id 6 >= nextPreKeyId-1 (6), newest pre-key guard",
                },
                "emergency": {
                    "delete": False,
                    "reason": "kept: pre-key id 6 >= nextPreKeyId-1 (6), newest pre-key guard",
                },
                "rule": {"cleanup": "keep_newest 2", "emergency": "keep_newest 1"},
                "guard": "pre-key id 6 >= nextPreKeyId-1 (6), newest pre-key guard",
            },
        ],
        "errors": [],
    }


def test_a_file_can_be_named_by_path_by_folder_name_or_relative_to_the_current_folder(
    tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_id = explained(tree, "1/session-15550000002.0.json")
    assert explained(tree, "company_1/session-15550000002.0.json") == by_id
    assert explained(tree, str(tree.root / "company_1" / "session-15550000002.0.json")) == by_id
    monkeypatch.chdir(tree.root.parent)
    assert explained(tree, "sessions/company_1/session-15550000002.0.json") == by_id


def test_explain_reads_only_and_takes_no_lock(tree: Tree) -> None:
    before = {path: path.stat(follow_symlinks=False).st_mtime_ns for path in tree.root.rglob("*")}
    explained(tree, "1/session-15550000001.0.json", "2/pre-key-1.json")
    after = {path: path.stat(follow_symlinks=False).st_mtime_ns for path in tree.root.rglob("*")}
    assert after == before
    assert not (tree.root / "company_2" / ".cleanup.lock").exists()
    assert not (tree.root / ".wa-sessions").exists()


def test_quiet_prints_nothing(tree: Tree) -> None:
    assert tree.run("--quiet", "1/creds.json") == (0, "", "")


@pytest.mark.parametrize(
    ("paths", "error"),
    [
        (["1/missing.json"], "no file missing.json in tenant folder <ROOT>/company_1"),
        (["1/creds.json", "2/missing.json"], "no file missing.json in tenant folder <ROOT>/company_2"),
        (["9/creds.json"], "no tenant folder for company '9' under <ROOT>"),
        (["/etc/hostname"], "/etc/hostname is not a file in a tenant folder under root <ROOT>"),
        (["<ROOT>/company_1"], "<ROOT>/company_1 is not a file in a tenant folder under root <ROOT>"),
        (
            ["<ROOT>/other/x.json"],
            "<ROOT>/other is not a tenant folder (tenant_pattern 'company_*' under <ROOT>)",
        ),
        (["1/"], "'1/' names no file: write COMPANY/NAME, e.g. 962302/pre-key-1.json"),
    ],
)
def test_a_path_outside_root_a_missing_tenant_or_file_is_one_line_exit_2(
    tree: Tree, paths: list[str], error: str
) -> None:
    (tree.root / "other").mkdir()
    (tree.root / "other" / "x.json").write_text("{}")
    arguments = [path.replace("<ROOT>", str(tree.root)) for path in paths]
    assert tree.run(*arguments) == (2, "", f"wa-sessions: {error}\n")


def test_no_path_is_a_usage_error(tree: Tree) -> None:
    code, stdout, stderr = tree.run()
    assert (code, stdout) == (2, "")
    assert stderr == "wa-sessions: Missing argument 'PATH'. (see 'wa-sessions explain --help')\n"
