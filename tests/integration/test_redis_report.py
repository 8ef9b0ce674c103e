"""scan, report, explain and history on a real redis-server: the server's memory (INFO memory)
replaces free disk and inodes in every format (SPEC §10), explain takes INSTANCE/FIELD, and
history reads the local history by instance id without asking the store."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from .helpers import run_cli
from .redis_fleet import (
    CAPPED,
    INSTANCE,
    OWN_SENDER_KEY,
    file_names,
    requires_redis,
    wa,
)
from .redis_server import RedisServer

pytestmark = requires_redis

LIMIT = 64 * 1024 * 1024


def test_scan_and_report_show_the_servers_memory_in_every_format(
    fleet: RedisServer, state_root: Path
) -> None:
    fleet.client().config_set("maxmemory", LIMIT)
    used = int(fleet.client().info("memory")["used_memory"])
    scan = wa(fleet, state_root, "scan", "--json")
    assert scan.returncode == 0, scan.describe()
    memory = scan.doc["memory"]
    assert memory["server"] == f"redis://127.0.0.1:{fleet.port}/0?prefix=evolution-cache"
    assert memory["max_bytes"] == LIMIT and 0.5 * used < memory["used_bytes"] < 2 * used
    assert scan.doc["disk"] is None
    report = wa(fleet, state_root, "report", "--format", "json")
    assert report.doc["memory"]["max_bytes"] == LIMIT and report.doc["disk"] is None

    text = wa(fleet, state_root, "scan").stdout.decode()
    assert f"memory of redis://127.0.0.1:{fleet.port}/0?prefix=evolution-cache: " in text
    assert "used of 64.0 MiB maxmemory (" in text and "disk:" not in text

    markdown = wa(fleet, state_root, "report", "--format", "markdown").stdout.decode()
    assert "Store memory" in markdown and "64.0 MiB" in markdown and "Disk under root" not in markdown
    table = wa(fleet, state_root, "report").stdout.decode()
    assert "Store memory" in table and "64.0 MiB" in table

    prometheus = wa(fleet, state_root, "report", "--format", "prometheus").stdout.decode()
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(prometheus)
        for sample in family.samples
    }
    assert samples["wa_sessions_store_memory_max_bytes"] == LIMIT
    assert 0.5 * used < samples["wa_sessions_store_memory_used_bytes"] < 2 * used
    assert "wa_sessions_filesystem_files_free" not in samples


def test_no_maxmemory_is_said_so(fleet: RedisServer, state_root: Path) -> None:
    fleet.client().config_set("maxmemory", 0)
    scan = wa(fleet, state_root, "scan")
    assert "used, no maxmemory set" in scan.stdout.decode()
    assert wa(fleet, state_root, "scan", "--json").doc["memory"]["max_bytes"] == 0


def test_explain_takes_a_field_or_its_file_name(fleet: RedisServer, state_root: Path) -> None:
    run = wa(
        fleet,
        state_root,
        "explain",
        "--json",
        f"{INSTANCE}/pre-key-1",
        f"{INSTANCE}/{OWN_SENDER_KEY}",
        f"{INSTANCE}/app-state-sync-key-AAAAAB/x",
        f"{INSTANCE}/session-15550000001.0.json",
    )
    assert run.returncode == 0, run.describe()
    files = run.doc["files"]
    assert [item["category"] for item in files] == ["pre-key", "sender-key", "app-state-sync-key", "session"]
    assert files[0]["cleanup"]["delete"] is True  # beyond the newest 50 by id: no age needed
    assert files[1]["guard"].startswith("our own sender key")
    assert files[3]["cleanup"]["delete"] is False  # never seen before: age 0
    assert run.doc["root"] == fleet.url()  # as typed, without a password
    missing = wa(fleet, state_root, "explain", f"{INSTANCE}/pre-key-999")
    assert missing.returncode == 2 and "pre-key-999" in missing.stderr.decode()
    not_a_key = wa(fleet, state_root, "explain", "pre-key-1.json")
    assert not_a_key.returncode == 2 and "INSTANCE/FIELD" in not_a_key.stderr.decode()
    assert not fleet.client().keys("wa-sessions:*")  # read only


def test_history_reads_the_local_history_by_instance_without_the_store(
    fleet: RedisServer, state_root: Path
) -> None:
    assert wa(fleet, state_root, "cleanup", "--company", INSTANCE).returncode == 0
    url = fleet.url()
    fleet.stop()  # the store is down: its history is still there
    run = run_cli("history", "--json", "--store", url, "--root", str(state_root), "--company", INSTANCE)
    assert run.returncode == 0, run.describe()
    assert {record["file"] for record in run.doc["records"]} == file_names(CAPPED)
    assert {record["company"] for record in run.doc["records"]} == {INSTANCE}
    assert run.doc["root"] == url
    text = run_cli("history", "--store", url, "--root", str(state_root), "--file", "pre-key-1.json")
    assert text.returncode == 0 and f"{INSTANCE}  cleanup: deleted pre-key-1.json" in text.stdout.decode()
