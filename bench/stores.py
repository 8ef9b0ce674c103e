"""Benchmark wa-sessions on a store (SPEC §10) against the floor a client can reach.

    python -m bench.stores                                 # Redis: 1,000,000 keys over 5,000 instances
    python -m bench.stores --store mysql                   # the same in MariaDB (mysql-baileys' table)
    python -m bench.stores --keys 20000 --runs 1           # a quick look (100 instances)

The benchmark starts its own server (redis-server, or mariadbd; a child process on 127.0.0.1, a
random port, its files in a temporary folder; killed at the end), writes the fleet
(bench/store_data.py: realistic values, seen records as if wa-sessions had been watching for up
to 40 days) into a pristine copy, and copies that into the store wa-sessions works on before each
command that changes it (bench/store_redis.py, bench/store_mysql.py). Each command is timed as a
whole process, `--runs` times after one warm-up, interleaved:

- `wa-sessions scan --json` and `cleanup --dry-run --json` against the floor
  (bench/store_floors.py, its own process): a bare pipelined `HGETALL` of the same hashes with
  redis-py; a bare streamed `SELECT session, id, LENGTH(value) FROM auth` with PyMySQL;
- a real `wa-sessions cleanup` against the same floor, timed on the same fresh copy just before.

Targets (issue 14): dry run <= 2x the floor, cleanup <= 3x, client peak RSS <= 150 MB (summed over
the wa-sessions processes; the server is not the client).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench.processes import Memory, Sample, interleaved, median_cpu, median_wall, timed
from bench.report import machine

TARGETS = {"scan": 2.0, "dry-run": 2.0, "cleanup": 3.0}
CLIENT_RSS_LIMIT_MB = 150


class Backend(Protocol):
    """A server started for the benchmark, holding the fleet and a pristine copy of it."""

    name: str
    floor_name: str
    url: str

    def populate(self, instances: int, keys_per_instance: int, now: float) -> tuple[int, int]: ...
    def reset(self) -> None: ...
    def key_count(self) -> int: ...
    def floor(self) -> list[str]: ...
    def describe(self) -> str: ...
    def stop(self) -> None: ...


@dataclass(slots=True)
class StoreRow:
    name: str
    ours: list[Sample] = field(default_factory=list)
    floor: list[Sample] = field(default_factory=list)
    memory: Memory = field(default_factory=Memory)

    @property
    def ratio(self) -> float:
        return median_wall(self.ours) / median_wall(self.floor)


JOBS: list[str] = []  # ["--jobs", N] when given


def ours(url: str, state_root: Path, *arguments: str) -> list[str]:
    return [sys.executable, "-m", "wa_sessions", *arguments, "--store", url, "--root", str(state_root), *JOBS]


def reset(backend: Backend, state_root: Path) -> None:
    """The store made again a copy of the pristine fleet; the local state dir (history) emptied."""
    backend.reset()
    shutil.rmtree(state_root, ignore_errors=True)
    state_root.mkdir()


def _tenant_lines(command: list[str]) -> Iterator[dict[str, Any]]:
    completed = subprocess.run(command, capture_output=True, check=False)
    if completed.returncode != 0:
        message = completed.stderr.decode(errors="replace")[-2000:]
        raise RuntimeError(f"{' '.join(command[:5])} … exited {completed.returncode}: {message}")
    for line in completed.stdout.splitlines():
        if line.startswith(b'{"company"'):
            yield json.loads(line.rstrip(b","))


def measure(backend: Backend, workdir: Path, runs: int, checks: dict[str, Any], log: Any) -> list[StoreRow]:
    url = backend.url
    state_root = workdir / "state"
    reset(backend, state_root)
    checks["keys_in_store"] = backend.key_count()
    scan_command = ours(url, state_root, "scan", "--json")
    checks["keys_seen_by_scan"] = sum(tenant["files"] for tenant in _tenant_lines(scan_command))
    dry_command = ours(url, state_root, "cleanup", "--dry-run", "--json")
    checks["keys_dry_run_would_delete"] = sum(len(tenant["deleted"]) for tenant in _tenant_lines(dry_command))
    rows = [StoreRow("scan"), StoreRow("dry-run")]
    commands = {"scan": scan_command, "dry-run": dry_command}
    log(f"scan and cleanup --dry-run against the floor ({runs} runs)")
    floor_samples: list[Sample] = []
    timed(backend.floor())
    for row in rows:
        _, row.memory = timed(commands[row.name], sample_memory=True)
    interleaved([(floor_samples, backend.floor()), *[(row.ours, commands[row.name]) for row in rows]], runs)
    for row in rows:
        row.floor = floor_samples
    log(f"real cleanup ({runs + 1} fresh copies)")
    real = StoreRow("cleanup")
    for run in range(runs + 1):  # run 0 is the warm-up and the check
        reset(backend, state_root)
        floor_sample = timed(backend.floor())[0]
        sample, memory = timed(ours(url, state_root, "cleanup"), sample_memory=run == 0)
        if run == 0:
            real.memory = memory
            checks["keys_left_by_cleanup"] = backend.key_count()
            checks["keys_deleted_by_cleanup"] = checks["keys_in_store"] - checks["keys_left_by_cleanup"]
        else:
            real.ours.append(sample)
            real.floor.append(floor_sample)
    checks["dry_run_matches_cleanup"] = (
        checks["keys_deleted_by_cleanup"] == checks["keys_dry_run_would_delete"]
    )
    return [*rows, real]


def report(
    backend: Backend,
    rows: Sequence[StoreRow],
    sizes: tuple[int, int, int],
    runs: int,
    checks: dict[str, Any],
    load: tuple[float, float],
) -> str:
    keys, instances, value_bytes = sizes
    lines = [
        f"wa-sessions store benchmark ({backend.name}), {datetime.date.today().isoformat()}: {keys:,} keys over"
        f" {instances:,} tenants, {value_bytes / 1e6:,.0f} MB of values; {backend.describe()}",
        f"machine: {machine()}",
        f"wa-sessions {' '.join(JOBS) or 'with its default --jobs'}; median of {runs} interleaved runs after 1 warm-up; load average {load[0]:.2f} before, {load[1]:.2f} after",
        "",
        f"| command | ours (median s) | floor: {backend.floor_name} (median s) | ratio | target | CPU s ours / floor"
        " | client peak RSS all processes (PSS) | keys/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    names = {"scan": "`scan --json`", "dry-run": "`cleanup --dry-run --json`", "cleanup": "`cleanup` (real)"}
    for row in rows:
        verdict = "ok" if row.ratio <= TARGETS[row.name] else "MISSED"
        rss = row.memory.rss_kb / 1024
        lines.append(
            f"| {names[row.name]} | {median_wall(row.ours):.2f} | {median_wall(row.floor):.2f} | **{row.ratio:.2f}x**"
            f" | <= {TARGETS[row.name]}x {verdict} | {median_cpu(row.ours):.1f} / {median_cpu(row.floor):.1f}"
            f" | {rss:.0f} MB ({row.memory.pss_kb / 1024:.0f} MB) <= {CLIENT_RSS_LIMIT_MB} MB {'ok' if rss <= CLIENT_RSS_LIMIT_MB else 'MISSED'}"
            f" | {keys / median_wall(row.ours):,.0f} |"
        )
    lines += ["", "checks: " + ", ".join(f"{key} {value}" for key, value in checks.items())]
    return "\n".join(lines) + "\n"


def start(store: str, workdir: Path) -> Backend:
    if store == "mysql":
        from bench.store_mysql import MySQLBackend

        return MySQLBackend(workdir)
    from bench.store_redis import RedisBackend

    return RedisBackend(workdir)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.stores",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--store", choices=["redis", "mysql"], default="redis", help="the store (default redis)"
    )
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys in all (default 1,000,000)")
    parser.add_argument("--instances", type=int, default=0, help="instances (default: keys / 200)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command (median; default 5)")
    parser.add_argument(
        "--jobs", type=int, default=None, help="pass --jobs N to wa-sessions (default: its own)"
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where the state dir goes (default: a temp dir)"
    )
    parser.add_argument(
        "--json", type=Path, default=None, dest="json_path", help="also write the results here"
    )
    options = parser.parse_args(argv)
    if options.jobs is not None:
        JOBS[:] = ["--jobs", str(options.jobs)]
    instances = options.instances or max(options.keys // 200, 1)
    keys_per_instance = options.keys // instances
    if options.runs < 1 or keys_per_instance < 40:
        parser.error("--runs must be >= 1 and --keys / --instances >= 40")
    server = {"redis": "redis-server", "mysql": "mariadbd"}[options.store]
    if shutil.which(server, path=os.environ.get("PATH", "") + ":/usr/sbin") is None:
        parser.error(
            f"{server} is needed (Debian: apt-get install {'redis-server' if server == 'redis-server' else 'mariadb-server'})"
        )

    def log(message: str) -> None:
        sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")

    workdir = Path(tempfile.mkdtemp(prefix="wa-sessions-store-bench-", dir=options.workdir))
    load_before = os.getloadavg()[0]
    backend = start(options.store, workdir)
    try:
        log(f"writing {instances * keys_per_instance:,} keys over {instances:,} tenants")
        keys, value_bytes = backend.populate(instances, keys_per_instance, time.time())
        checks: dict[str, Any] = {"keys_written": keys}
        rows = measure(backend, workdir, options.runs, checks, log)
        load = (load_before, os.getloadavg()[0])
        text = report(backend, rows, (keys, instances, value_bytes), options.runs, checks, load)
    finally:
        backend.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    sys.stdout.write(text)
    if options.json_path is not None:
        document = {
            "report": text,
            "store": options.store,
            "keys": keys,
            "instances": instances,
            "checks": checks,
        }
        document["rows"] = [
            {
                "name": row.name,
                "ours_median": median_wall(row.ours),
                "floor_median": median_wall(row.floor),
                "ratio": row.ratio,
                "target": TARGETS[row.name],
                "client_peak_rss_mb": row.memory.rss_kb / 1024,
            }
            for row in rows
        ]
        options.json_path.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
