"""scan.py: reading real tenant folders (lstat only, nothing followed, nothing blocking)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from wa_sessions import layout
from wa_sessions import listing as listing_module
from wa_sessions.scan import TenantScan
from wa_sessions.stores import Tenant, TenantUnavailable
from wa_sessions.stores import folder as folder_module
from wa_sessions.stores.folder import list_tenants, open_root, open_tenant, read_creds, scan_tenant

NOW = 1_800_000_000.0
DAY = 86400
CREDS = {
    "nextPreKeyId": 813,
    "firstUnuploadedPreKeyId": 813,
    "me": {"id": "15550000000:12@s.whatsapp.net", "lid": "100000000000002:12@lid"},
}


def write(folder: Path, name: str | bytes, data: bytes | str = b"{}", age: float = 0.0) -> None:
    path = os.path.join(os.fsencode(folder), os.fsencode(name))
    with open(path, "wb") as writer:
        writer.write(data.encode() if isinstance(data, str) else data)
    os.utime(path, (NOW - age, NOW - age))


@pytest.fixture(autouse=True, params=["C", "Python"])
def listing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test of this file runs with both listings: the C one and os.scandir."""
    if request.param == "C":
        c_listing = pytest.importorskip("wa_sessions._listing", reason="the C listing was not built")
        monkeypatch.setattr(folder_module, "listing", c_listing.listing)
    else:
        monkeypatch.setattr(folder_module, "listing", listing_module.python_listing)
    return str(request.param)


@pytest.fixture
def tenant(tmp_path: Path) -> Path:
    folder = tmp_path / "company_962302"
    folder.mkdir()
    write(folder, "creds.json", json.dumps(CREDS))
    return folder


@contextlib.contextmanager
def opened(folder: Path) -> Iterator[int]:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield fd
    finally:
        os.close(fd)


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging forever if the code under test blocks (e.g. opening a FIFO)."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"blocked for more than {seconds}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def scan(folder: Path, now: float | None = NOW) -> TenantScan:
    with opened(folder) as fd, deadline(5):
        return scan_tenant(fd, now)


def by_name(scanned: TenantScan) -> dict[str, layout.Entry]:
    return {entry.name: entry for entry in scanned.entries}


# --- entries and categories -------------------------------------------------------------------


def test_scan_tenant_lists_and_classifies_every_entry(tenant: Path) -> None:
    for name in (
        "pre-key-9.json",
        "pre-key-10.json",
        "pre-key-10.json.bak",
        "session-15550000000.0.json",
        "sender-key-120363000000000000@g.us--15550000001--2.json",
        "sender-key-memory-120363000000000000@g.us.json",
        "app-state-sync-key-AAAAAC__q.json",
        "notes.txt",
    ):
        write(tenant, name, b'{"x": 1}', age=DAY)
    scanned = scan(tenant)
    entries = by_name(scanned)
    assert set(entries) == {
        "creds.json",
        "pre-key-9.json",
        "pre-key-10.json",
        "pre-key-10.json.bak",
        "session-15550000000.0.json",
        "sender-key-120363000000000000@g.us--15550000001--2.json",
        "sender-key-memory-120363000000000000@g.us.json",
        "app-state-sync-key-AAAAAC__q.json",
        "notes.txt",
    }
    assert entries["pre-key-10.json.bak"].category == "pre-key"
    assert entries["pre-key-10.json.bak"].key_name == "pre-key-10.json"
    assert entries["pre-key-10.json.bak"].pre_key_id == 10
    assert entries["pre-key-9.json"].pre_key_id == 9
    assert entries["notes.txt"].category == "unknown"
    assert scanned.categories() == {
        "creds": 1,
        "app-state-sync-key": 1,
        "app-state-sync-version": 0,
        "lid-mapping": 0,
        "pre-key": 3,
        "session": 1,
        "sender-key": 1,
        "sender-key-memory": 1,
        "identity-key": 0,
        "device-list": 0,
        "tctoken": 0,
        "unknown": 1,
    }
    assert scanned.files == 9
    assert scanned.problems == ["unknown file (kept): notes.txt"]  # counted, and named


def test_scan_tenant_records_size_inode_and_mtime_as_on_disk(tenant: Path) -> None:
    write(tenant, "session-1.0.json", b"0123456789", age=3 * DAY)
    scanned_entry = by_name(scan(tenant))["session-1.0.json"]
    info = os.lstat(tenant / "session-1.0.json")
    assert scanned_entry.size == 10
    assert scanned_entry.inode == info.st_ino
    assert scanned_entry.mtime_ns == info.st_mtime_ns == int((NOW - 3 * DAY) * 1e9)
    assert scanned_entry.regular
    assert scanned_entry.kind == "file"


def test_scan_tenant_counts_bytes_of_all_entries(tenant: Path) -> None:
    write(tenant, "pre-key-1.json", b"x" * 100)
    write(tenant, "pre-key-2.json", b"x" * 50)
    assert scan(tenant).bytes == 150 + len(json.dumps(CREDS))


def test_scan_tenant_leaves_dot_entries_out(tenant: Path) -> None:
    write(tenant, ".cleanup.lock", b"")
    (tenant / ".wa-sessions").mkdir()
    write(tenant, "pre-key-1.json")
    scanned = scan(tenant)
    assert set(by_name(scanned)) == {"creds.json", "pre-key-1.json"}
    assert scanned.files == 2
    assert scanned.problems == []


def test_scan_tenant_keeps_a_non_utf8_name_and_reports_it_escaped(tenant: Path) -> None:
    write(tenant, b"session-\xff.json", b"")
    scanned = scan(tenant)
    name = os.fsdecode(b"session-\xff.json")
    assert name in by_name(scanned)
    assert by_name(scanned)[name].category == "session"
    assert "empty key file: session-\\xff.json" in scanned.problems


# --- creds.json problems ------------------------------------------------------------------------


def test_scan_tenant_reads_what_creds_json_says(tenant: Path) -> None:
    creds = scan(tenant).creds
    assert creds.state == "ok"
    assert creds.source == "creds.json"
    assert creds.next_pre_key_id == 813
    assert creds.first_unuploaded_pre_key_id == 813
    assert creds.own_users == frozenset({"15550000000", "100000000000002_1"})


def test_scan_tenant_reports_a_missing_creds_json(tmp_path: Path) -> None:
    write(tmp_path, "pre-key-1.json")
    scanned = scan(tmp_path)
    assert scanned.creds.state == "missing"
    assert scanned.problems == ["creds.json is missing"]


@pytest.mark.parametrize(
    ("data", "state"),
    [
        (b"", "empty"),
        (b"  \n", "empty"),
        (b'{"nextPreKeyId": 8', "unparseable"),
        (b"[1, 2]", "unparseable"),
        (b"\xff\xfe", "unparseable"),
        (b"null", "unparseable"),
    ],
)
def test_scan_tenant_reports_an_empty_or_unparseable_creds_json(
    tmp_path: Path, data: bytes, state: str
) -> None:
    write(tmp_path, "creds.json", data)
    scanned = scan(tmp_path)
    assert scanned.creds.state == state
    assert not scanned.creds.readable
    assert scanned.problems[0] == f"creds.json is {state}"


def test_creds_json_without_next_pre_key_id_is_not_ok(tmp_path: Path) -> None:
    write(tmp_path, "creds.json", json.dumps({"me": {"id": "15550000000:1@s.whatsapp.net"}}))
    creds = scan(tmp_path).creds
    assert not creds.readable
    assert creds.own_users == frozenset({"15550000000"})


def test_creds_json_with_a_boolean_next_pre_key_id_is_not_ok(tmp_path: Path) -> None:
    write(tmp_path, "creds.json", json.dumps({"nextPreKeyId": True}))
    assert scan(tmp_path).creds.next_pre_key_id is None


def test_read_creds_falls_back_to_creds_json_bak_when_creds_json_is_missing(tmp_path: Path) -> None:
    write(tmp_path, "creds.json.bak", json.dumps({**CREDS, "nextPreKeyId": 99}))
    with opened(tmp_path) as fd:
        creds = read_creds(fd, {"creds.json.bak"})
    assert creds.state == "ok"
    assert creds.source == "creds.json.bak"
    assert creds.next_pre_key_id == 99


def test_read_creds_prefers_creds_json_to_its_bak(tmp_path: Path) -> None:
    write(tmp_path, "creds.json", json.dumps(CREDS))
    write(tmp_path, "creds.json.bak", json.dumps({**CREDS, "nextPreKeyId": 99}))
    with opened(tmp_path) as fd:
        creds = read_creds(fd, {"creds.json", "creds.json.bak"})
    assert creds.source == "creds.json"
    assert creds.next_pre_key_id == 813


def test_read_creds_is_missing_when_neither_file_is_listed(tmp_path: Path) -> None:
    with opened(tmp_path) as fd:
        assert read_creds(fd, {"pre-key-1.json"}).state == "missing"


def test_scan_tenant_uses_creds_json_bak_when_creds_json_is_missing(tmp_path: Path) -> None:
    write(tmp_path, "creds.json.bak", json.dumps(CREDS))
    scanned = scan(tmp_path)
    assert scanned.creds.state == "ok"
    assert scanned.creds.source == "creds.json.bak"
    assert scanned.creds.next_pre_key_id == 813


def test_scan_tenant_never_follows_a_symlinked_creds_json(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps(CREDS))
    folder = tmp_path / "company_1"
    folder.mkdir()
    (folder / "creds.json").symlink_to(elsewhere)
    scanned = scan(folder)
    assert scanned.creds.state != "ok"
    assert scanned.creds.next_pre_key_id is None
    assert by_name(scanned)["creds.json"].category == "unknown"


def test_a_fifo_named_creds_json_does_not_block_the_scan(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "creds.json")
    scanned = scan(tmp_path)  # fails with TimeoutError rather than hanging if it blocks
    assert not scanned.creds.readable
    assert by_name(scanned)["creds.json"].kind == "fifo"


# --- key file problems ---------------------------------------------------------------------------


def test_scan_tenant_reports_empty_key_files(tenant: Path) -> None:
    write(tenant, "pre-key-1.json", b"")
    write(tenant, "session-1.0.json.bak", b"")
    write(tenant, "notes.txt", b"")
    write(tenant, "pre-key-2.json", b"{}")
    problems = scan(tenant).problems
    assert "empty key file: pre-key-1.json" in problems
    assert "empty key file: session-1.0.json.bak" in problems
    assert not any("pre-key-2.json" in problem for problem in problems)
    # an unknown file is no key file: named as unknown, never as an empty key file
    assert [problem for problem in problems if "notes.txt" in problem] == ["unknown file (kept): notes.txt"]


def test_scan_tenant_caps_problems_of_one_kind(tenant: Path) -> None:
    for pre_key_id in range(25):
        write(tenant, f"pre-key-{pre_key_id}.json", b"")
    problems = scan(tenant).problems
    assert sum(problem.startswith("empty key file") for problem in problems) == 20
    assert problems[-1] == "... and 5 more like the above"


def test_scan_tenant_reports_a_modification_time_in_the_future(tenant: Path) -> None:
    write(tenant, "session-1.0.json", age=-DAY)
    write(tenant, "session-2.0.json", age=-30)  # within a minute of skew: not reported
    problems = scan(tenant).problems
    assert problems == [
        "modified in the future (clock moved back?), age taken as 0: session-1.0.json",
    ]


def test_scan_tenant_without_now_does_not_judge_mtimes(tenant: Path) -> None:
    write(tenant, "session-1.0.json", age=-DAY)
    assert scan(tenant, now=None).problems == []


def test_a_symlink_is_reported_not_regular_and_unknown_and_never_followed(tmp_path: Path) -> None:
    target = tmp_path / "target.json"
    target.write_text("{}")
    folder = tmp_path / "company_1"
    folder.mkdir()
    write(folder, "creds.json", json.dumps(CREDS))
    (folder / "session-1.0.json").symlink_to(target)
    (folder / "pre-key-5.json").symlink_to(tmp_path / "dangling")
    scanned = scan(folder)
    entries = by_name(scanned)
    for name in ("session-1.0.json", "pre-key-5.json"):
        assert entries[name].category == "unknown"
        assert entries[name].kind == "symlink"
        assert not entries[name].regular
        assert entries[name].pre_key_id is None
        assert f"not a regular file (symlink): {name}" in scanned.problems
    assert entries["session-1.0.json"].size == os.lstat(folder / "session-1.0.json").st_size


def test_a_directory_is_reported_not_regular_and_unknown(tenant: Path) -> None:
    (tenant / "session-1.0.json").mkdir()
    scanned = scan(tenant)
    assert by_name(scanned)["session-1.0.json"].category == "unknown"
    assert by_name(scanned)["session-1.0.json"].kind == "directory"
    assert "not a regular file (directory): session-1.0.json" in scanned.problems


def test_a_fifo_named_like_a_key_file_is_reported_and_does_not_block(tenant: Path) -> None:
    os.mkfifo(tenant / "pre-key-1.json")
    os.mkfifo(tenant / "creds.json.bak")
    scanned = scan(tenant)
    assert by_name(scanned)["pre-key-1.json"].category == "unknown"
    assert by_name(scanned)["pre-key-1.json"].kind == "fifo"
    assert "not a regular file (fifo): pre-key-1.json" in scanned.problems
    assert scanned.creds.readable


def test_a_socket_is_reported_not_regular_and_unknown(tmp_path: Path) -> None:
    folder = tmp_path / "t"  # AF_UNIX paths are short
    folder.mkdir()
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(folder / "session-1.0.json"))
        scanned = scan(folder)
    assert by_name(scanned)["session-1.0.json"].kind == "socket"
    assert by_name(scanned)["session-1.0.json"].category == "unknown"
    assert "not a regular file (socket): session-1.0.json" in scanned.problems


def test_non_regular_entries_are_counted_as_files(tenant: Path) -> None:
    (tenant / "subdir").mkdir()
    os.mkfifo(tenant / "pipe")
    assert scan(tenant).files == 3


# --- tenants under root -------------------------------------------------------------------------


def test_list_tenants_finds_matching_directories_ordered_by_company_id(tmp_path: Path) -> None:
    for name in ("company_962303", "company_962302", "company_1", "other_5", ".wa-sessions"):
        (tmp_path / name).mkdir()
    write(tmp_path, "company_file")  # a file, not a tenant
    root_fd = open_root(tmp_path)
    try:
        tenants = list_tenants(tmp_path, root_fd, "company_*")
    finally:
        os.close(root_fd)
    assert [tenant.company for tenant in tenants] == ["1", "962302", "962303"]
    assert tenants[1] == Tenant("962302", "company_962302", tmp_path / "company_962302", False)


def test_list_tenants_lists_a_symlinked_tenant_so_it_can_be_reported(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "company_2").symlink_to(tmp_path / "elsewhere")
    root_fd = open_root(tmp_path)
    try:
        tenants = list_tenants(tmp_path, root_fd, "company_*")
        assert [(tenant.company, tenant.is_symlink) for tenant in tenants] == [("2", True)]
        with pytest.raises(TenantUnavailable, match="symlink"), open_tenant(root_fd, tenants[0]):
            pass
    finally:
        os.close(root_fd)


def test_open_root_of_a_missing_folder_is_tenant_unavailable(tmp_path: Path) -> None:
    with pytest.raises(TenantUnavailable, match="cannot open root"):
        open_root(tmp_path / "absent")
