"""report: every format (table, JSON, Markdown, Prometheus) from the same fleet agrees on the
numbers; the Prometheus text parses with prometheus_client's parser and follows node_exporter
textfile conventions; --output is atomic; the history is read across rotations, with truncated
lines and `failed` lines."""

from __future__ import annotations

import json
import os
import re
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from wa_sessions import history_totals as history
from wa_sessions.actions.cleanup import run_cleanup
from wa_sessions.actions.report import run_report
from wa_sessions.cli import run as cli_run
from wa_sessions.config import load_settings
from wa_sessions.history import HISTORY_FILE
from wa_sessions.history_totals import history_totals, rotate_history
from wa_sessions.layout import CATEGORIES, STATUS_LEVELS, STATUSES
from wa_sessions.output import REPORT_FORMATS, report_text
from wa_sessions.output.tabular import human_bytes

from .fleet_helpers import LEVEL_FILES, make_fleet, make_tenant, write_fleet_config
from .helpers import run_cli


@pytest.fixture
def cleaned_fleet(root: Path, tmp_path: Path, now: float) -> Path:
    """A fleet at every level after one multitenant-cleanup (so the history has something)."""
    make_fleet(root, now)
    config = write_fleet_config(tmp_path / "config.yaml", root)
    assert run_cli("multitenant-cleanup", "--config", config).returncode == 0
    make_tenant(root / "company_trigger", now, LEVEL_FILES["trigger"])  # due again, for the numbers
    return config


def _report(config: Path, *args: str) -> str:
    run = run_cli("report", "--config", config, *args)
    assert run.returncode == 0, run.describe()
    assert run.stderr == b""
    return run.stdout.decode("utf-8")


def _markdown_table(text: str, title: str) -> list[list[str]]:
    section = text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def _text_table(text: str, title: str) -> list[list[str]]:
    section = text.split(f"\n{title}\n", 1)[1].split("\n\n", 1)[0]
    # Columns are two spaces or more apart (a size is one cell: `526 bytes`, `3.8 GiB`).
    return [re.split(r"\s{2,}", line.strip()) for line in section.splitlines()[1:]]


def _metrics(text: str) -> dict[str, Any]:
    families = {family.name: family for family in text_string_to_metric_families(text)}
    return families


def _formats(config: Path) -> dict[str, str]:
    """Every format rendered from one report of the fleet (one scan, one disk reading)."""
    result = run_report(load_settings(config))
    return {name: report_text(result, name) for name in REPORT_FORMATS}


def test_the_cli_prints_each_format_as_the_library_renders_it(cleaned_fleet: Path) -> None:
    formats = _formats(cleaned_fleet)
    volatile = ("generated_at", "disk")

    def steady(document: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in document.items() if key not in volatile}

    expected = steady(json.loads(formats["json"]))
    assert steady(json.loads(_report(cleaned_fleet, "--format", "json"))) == expected
    assert steady(json.loads(_report(cleaned_fleet, "--json"))) == expected
    markdown = _report(cleaned_fleet, "--format", "markdown")
    assert _markdown_table(markdown, "Tenants") == _markdown_table(formats["markdown"], "Tenants")
    for text in (_report(cleaned_fleet), _report(cleaned_fleet, "--format", "table")):
        assert _text_table(text, "Tenants") == _text_table(formats["table"], "Tenants")
    prometheus = _metrics(_report(cleaned_fleet, "--format", "prometheus"))
    assert sorted(prometheus) == sorted(_metrics(formats["prometheus"]))


def test_every_format_agrees_on_the_numbers(cleaned_fleet: Path, root: Path) -> None:
    formats = _formats(cleaned_fleet)
    document = json.loads(formats["json"])
    markdown = formats["markdown"]
    table = formats["table"]
    metrics = _metrics(formats["prometheus"])

    tenants = {t["company"]: t for t in document["tenants"]}
    assert sorted(tenants) == sorted(LEVEL_FILES)
    for company, tenant in tenants.items():
        assert set(tenant) >= {"company", "path", "files", "bytes", "status", "categories", "problems"}
        assert set(tenant["categories"]) == set(CATEGORIES)
        assert sum(tenant["categories"].values()) == tenant["files"]
        on_disk = [n for n in os.listdir(root / f"company_{company}") if not n.startswith(".")]
        assert tenant["files"] == len(on_disk)
    # What the history says: the trigger/emergency tenants lost their 5 old sessions, danger 10.
    assert {c: t["deleted_total"] for c, t in tenants.items()} == {
        "healthy": 0, "warning": 0, "critical": 0, "trigger": 5, "emergency": 5, "danger": 10,
    }  # fmt: skip
    for tenant in tenants.values():
        if tenant["deleted_total"]:
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", tenant["last_cleanup"])
        else:
            assert tenant["last_cleanup"] is None
    assert document["deleted_total"] == 20
    assert document["statuses"] == {
        level: sum(1 for t in tenants.values() if t["status"] == level) for level in STATUSES
    }
    assert document["categories"] == {
        category: sum(t["categories"][category] for t in tenants.values()) for category in CATEGORIES
    }
    assert document["largest"][0] == "danger" and len(document["largest"]) == 6
    assert set(document["disk"]) == {"bytes_total", "bytes_free", "inodes_total", "inodes_free"}
    assert list(document["last_success"]) == ["multitenant-cleanup"]

    # Markdown and the plain table: the same per-tenant rows and the same totals.
    for rows in (_markdown_table(markdown, "Tenants"), _text_table(table, "Tenants")):
        by_company = {row[0]: row for row in rows}
        assert sorted(by_company) == sorted(tenants)
        for company, tenant in tenants.items():
            row = by_company[company]
            assert row[1:4] == [tenant["status"], str(tenant["files"]), human_bytes(tenant["bytes"])]
            assert row[5] == (tenant["last_cleanup"] or "never")
            assert row[6:8] == [str(tenant["deleted_total"]), human_bytes(tenant["freed_bytes_total"])]
    for rows in (_markdown_table(markdown, "Tenants per status"), _text_table(table, "Tenants per status")):
        assert {row[0]: int(row[1]) for row in rows} == document["statuses"]
    for rows in (_markdown_table(markdown, "Files per category"), _text_table(table, "Files per category")):
        assert {row[0]: int(row[1]) for row in rows} == document["categories"]
    for rows in (_markdown_table(markdown, "Largest tenants"), _text_table(table, "Largest tenants")):
        assert [row[0] for row in rows] == document["largest"]
    disk = document["disk"]
    for rows in (_markdown_table(markdown, "Disk under root"), _text_table(table, "Disk under root")):
        assert rows[0][-3:-1] == [human_bytes(disk["bytes_total"]), human_bytes(disk["bytes_free"])]
        assert rows[1][-3:-1] == [str(disk["inodes_total"]), str(disk["inodes_free"])]

    # Prometheus: the same numbers.
    def samples(name: str) -> dict[str, float]:
        return {
            sample.labels.get(
                "company", sample.labels.get("status", sample.labels.get("category", ""))
            ): sample.value
            for sample in metrics[name].samples
        }

    assert samples("wa_sessions_tenant_files") == {c: t["files"] for c, t in tenants.items()}
    assert samples("wa_sessions_tenant_bytes") == {c: t["bytes"] for c, t in tenants.items()}
    assert samples("wa_sessions_tenant_deleted_files") == {c: t["deleted_total"] for c, t in tenants.items()}
    assert samples("wa_sessions_tenant_deleted_bytes") == {
        c: t["freed_bytes_total"] for c, t in tenants.items()
    }
    assert samples("wa_sessions_tenant_status_level") == {
        c: STATUS_LEVELS.index(t["status"]) for c, t in tenants.items()
    }
    assert samples("wa_sessions_tenants") == document["statuses"]
    assert samples("wa_sessions_category_files") == document["categories"]
    for name, key in (
        ("filesystem_size_bytes", "bytes_total"),
        ("filesystem_avail_bytes", "bytes_free"),
        ("filesystem_files", "inodes_total"),
        ("filesystem_files_free", "inodes_free"),
    ):
        assert metrics[f"wa_sessions_{name}"].samples[0].value == disk[key], name
    last = {c: t["last_cleanup"] for c, t in tenants.items() if t["last_cleanup"]}
    assert set(samples("wa_sessions_tenant_last_cleanup_timestamp_seconds")) == set(last)
    (success,) = metrics["wa_sessions_last_success_timestamp_seconds"].samples
    assert success.labels == {"command": "multitenant-cleanup"}
    assert abs(success.value - time.time()) < 300


def test_prometheus_follows_textfile_conventions(cleaned_fleet: Path) -> None:
    text = _report(cleaned_fleet, "--format", "prometheus")
    metrics = _metrics(text)
    assert text.endswith("\n")
    for name, family in metrics.items():
        assert name.startswith("wa_sessions_"), name
        assert family.documentation, f"{name} has no HELP"
        assert family.type in ("gauge", "counter"), name
        if family.type == "counter":
            assert all(sample.name == f"{name}_total" for sample in family.samples)
    for line in text.splitlines():
        if line.startswith("wa_sessions_tenant_"):
            assert '{company="' in line, line
    helps = [line.split()[2] for line in text.splitlines() if line.startswith("# HELP")]
    types = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert helps == types and len(helps) == len(set(helps)), "one HELP and one TYPE per metric"


def test_prometheus_escapes_label_values(root: Path, tmp_path: Path, now: float) -> None:
    make_tenant(
        Path((os.fsencode(root) + b'/company_a"b\\c\xff').decode("utf-8", "surrogateescape")), now, 15
    )
    config = write_fleet_config(tmp_path / "config.yaml", root)

    metrics = _metrics(_report(config, "--format", "prometheus"))

    (sample,) = metrics["wa_sessions_tenant_files"].samples
    assert sample.labels == {"company": 'a"b\\c\\xff'}


def test_output_is_written_atomically_and_readable_by_the_collector(
    cleaned_fleet: Path, tmp_path: Path
) -> None:
    target = tmp_path / "textfile" / "wa_sessions.prom"
    target.parent.mkdir()
    target.write_text("# the previous report\n")
    stop = threading.Event()
    seen: list[str] = []

    def collector() -> None:
        while not stop.is_set():
            try:
                seen.append(target.read_text())
            except FileNotFoundError:
                seen.append("<missing>")

    reader = threading.Thread(target=collector)
    reader.start()
    try:
        for _ in range(4):
            run = run_cli(
                "report", "--config", cleaned_fleet, "--format", "prometheus", "--output", target, "--quiet"
            )
            assert (run.returncode, run.stdout, run.stderr) == (0, b"", b""), run.describe()
    finally:
        stop.set()
        reader.join()
    assert seen, "the collector read the file"
    for text in seen:
        assert text == "# the previous report\n" or (
            text.endswith("\n") and "wa_sessions_report_timestamp_seconds" in text
        ), f"a partial file was visible: {text[-200:]!r}"
    _metrics(target.read_text())
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert os.listdir(target.parent) == ["wa_sessions.prom"], "no temp file is left behind"


def test_a_failed_write_leaves_the_previous_file_and_no_temp_file(
    cleaned_fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out.json"
    target.write_text("previous")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    code = cli_run(["report", "--config", str(cleaned_fleet), "--format", "json", "--output", str(target)])
    monkeypatch.undo()

    assert code == 1
    assert target.read_text() == "previous"
    assert os.listdir(tmp_path).count("out.json") == 1
    assert [n for n in os.listdir(tmp_path) if n.startswith(".out.json")] == []
    assert "No space left on device" in capsys.readouterr().err


def test_the_target_only_ever_holds_a_whole_report(
    cleaned_fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.md"
    target.write_text("previous")
    observed: list[tuple[str, str]] = []
    real_replace = os.replace

    def replace(source: str, destination: str) -> None:
        observed.append((Path(source).read_text(), Path(destination).read_text()))
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", replace)
    code = cli_run(
        ["report", "--config", str(cleaned_fleet), "--format", "markdown", "--output", str(target)]
    )
    monkeypatch.undo()

    assert code == 0
    ((written, before_rename),) = observed
    assert before_rename == "previous", "the target is untouched until the rename"
    assert written == target.read_text() and written.startswith("# wa-sessions report")


def test_a_truncated_last_history_line_is_read_without_error(cleaned_fleet: Path, root: Path) -> None:
    before = json.loads(_report(cleaned_fleet, "--json"))
    history = root / ".wa-sessions" / HISTORY_FILE
    with history.open("ab") as writer:
        writer.write(b'{"event":"deleted","time":"2099-01-01T00:00:00Z","company":"trigger","fi')

    after = json.loads(_report(cleaned_fleet, "--json"))

    assert [t["deleted_total"] for t in after["tenants"]] == [t["deleted_total"] for t in before["tenants"]]


def test_failed_lines_take_back_their_deletions(root: Path, tmp_path: Path, now: float) -> None:
    make_tenant(root / "company_a", now, 15)
    state_dir = root / ".wa-sessions"
    state_dir.mkdir()
    record = {"event": "deleted", "time": "2026-01-01T00:00:00Z", "company": "a", "file": "x", "bytes": 7}
    lines = [
        record,
        {**record, "file": "y", "time": "2026-02-01T00:00:00+00:00"},
        {**record, "file": "y", "event": "failed", "error": "EIO"},
        {**record, "file": "z", "time": "not a time"},
    ]
    (state_dir / HISTORY_FILE).write_text("".join(json.dumps(line) + "\n" for line in lines))
    config = write_fleet_config(tmp_path / "config.yaml", root)

    (tenant,) = json.loads(_report(config, "--json"))["tenants"]

    assert (tenant["deleted_total"], tenant["freed_bytes_total"]) == (2, 14)
    assert tenant["last_cleanup"] == "2026-02-01T00:00:00Z"
    assert "wa_sessions_tenant_last_cleanup_timestamp_seconds" in _report(config, "--format", "prometheus")


def test_history_rotation_keeps_the_totals(
    root: Path, tmp_path: Path, now: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_fleet_config(tmp_path / "config.yaml", root)
    settings = load_settings(config)
    state_dir = root / ".wa-sessions"
    monkeypatch.setattr(history, "HISTORY_ROTATE_BYTES", 1500)
    expected = 0
    for round_number in range(6):
        make_tenant(root / "company_a", now, 15, old=5 + round_number)
        result = run_cleanup(settings, [], dry_run=False)
        expected += sum(len(t.deleted) for t in result.tenants)
        assert history_totals(state_dir)["a"].deleted == expected
    assert (state_dir / "history.jsonl.1").exists() and (state_dir / "history-summary.json").exists()
    assert (state_dir / HISTORY_FILE).stat().st_size < 1500 + 2000
    report = json.loads(_report(config, "--json"))
    assert report["tenants"][0]["deleted_total"] == expected


def test_a_rotation_killed_between_its_two_steps_counts_nothing_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    record = (
        json.dumps({"event": "deleted", "time": "2026-01-01T00:00:00Z", "company": "a", "bytes": 1}) + "\n"
    )
    history = state_dir / HISTORY_FILE
    history.write_text(record)
    assert rotate_history(state_dir, max_bytes=1)  # generation 1 -> history.jsonl.1, nothing to fold
    history.write_text(record * 2)
    assert history_totals(state_dir)["a"].deleted == 3

    # The next rotation folds .1 into the summary, then is killed before its rename.
    real_replace = os.replace

    def killed(source: str, destination: str) -> None:
        if str(destination).endswith("history.jsonl.1"):
            raise KeyboardInterrupt
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        rotate_history(state_dir, max_bytes=1)
    monkeypatch.undo()
    assert (state_dir / "history-summary.json").exists() and history.exists()
    assert history_totals(state_dir)["a"].deleted == 3, "the folded generation is not counted twice"

    assert rotate_history(state_dir, max_bytes=1)  # the retry does not fold it again
    assert history_totals(state_dir)["a"].deleted == 3
    history.write_text(record)
    assert rotate_history(state_dir, max_bytes=1)
    assert history_totals(state_dir)["a"].deleted == 4
    assert sorted(p.name for p in state_dir.iterdir() if not p.name.endswith(".lock")) == [
        "history-summary.json",
        "history.jsonl.1",
    ]
