"""Benchmark wa-sessions on Evolution API's Redis (SPEC §10) against the floor a client can reach.

    python -m bench.stores                           # 1,000,000 keys over 5,000 instances
    python -m bench.stores --keys 20000 --runs 1     # a quick look (100 instances)

The benchmark starts its own redis-server (a child process on 127.0.0.1, a random port, no
persistence, its files in a temporary folder; killed at the end), writes the fleet
(bench/store_data.py: realistic values, seen records as if wa-sessions had been watching for up
to 40 days) into database 1, and copies it into database 0 before each measured command that
changes it. Each command is timed as a whole process, `--runs` times after one warm-up,
interleaved:

- `wa-sessions scan --json` and `cleanup --dry-run --json` against the floor: a bare pipelined
  `HGETALL` of the same hashes with redis-py (bench/store_floors.py), as its own process;
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
from typing import Any

import redis

from bench import store_data
from bench.processes import Memory, Sample, interleaved, median_cpu, median_wall, timed
from bench.report import machine
from tests.integration.redis_server import RedisServer, start_redis

PRISTINE_DB = 1
TARGETS = {"scan": 2.0, "dry-run": 2.0, "cleanup": 3.0}
CLIENT_RSS_LIMIT_MB = 150


@dataclass(slots=True)
class StoreRow:
    name: str
    ours: list[Sample] = field(default_factory=list)
    floor: list[Sample] = field(default_factory=list)
    memory: Memory = field(default_factory=Memory)

    @property
    def ratio(self) -> float:
        return median_wall(self.ours) / median_wall(self.floor)


def ours(url: str, state_root: Path, *arguments: str) -> list[str]:
    return [sys.executable, "-m", "wa_sessions", *arguments, "--store", url, "--root", str(state_root)]


def floor(url: str) -> list[str]:
    return [sys.executable, "-m", "bench.store_floors", url, store_data.PREFIX]


def reset(port: int, state_root: Path) -> None:
    """Database 0 made again a copy of the pristine fleet in database 1 (COPY, on the server);
    the local state dir (history) emptied."""
    redis.Redis(port=port, db=0).flushdb()
    pristine = redis.Redis(port=port, db=PRISTINE_DB)
    pipeline = pristine.pipeline(transaction=False)
    for key in pristine.scan_iter(count=1000):
        pipeline.copy(key, key, destination_db=0)
    pipeline.execute()
    pristine.close()
    shutil.rmtree(state_root, ignore_errors=True)
    state_root.mkdir()


def key_count(client: redis.Redis) -> int:
    keys = list(client.scan_iter(match=f"{store_data.PREFIX}:instance:*".encode(), count=1000))
    pipeline = client.pipeline(transaction=False)
    for key in keys:
        pipeline.hlen(key)
    return sum(pipeline.execute())


def _tenant_lines(command: list[str]) -> Iterator[dict[str, Any]]:
    completed = subprocess.run(command, capture_output=True, check=True)
    for line in completed.stdout.splitlines():
        if line.startswith(b'{"company"'):
            yield json.loads(line.rstrip(b","))


def measure(
    server: RedisServer, workdir: Path, runs: int, checks: dict[str, Any], log: Any
) -> list[StoreRow]:
    url = server.url(0)
    client = redis.Redis(port=server.port, db=0)
    state_root = workdir / "state"
    reset(server.port, state_root)
    checks["keys_in_store"] = key_count(client)
    checks["keys_seen_by_scan"] = sum(
        tenant["files"] for tenant in _tenant_lines(ours(url, state_root, "scan", "--json"))
    )
    dry_command = ours(url, state_root, "cleanup", "--dry-run", "--json")
    checks["keys_dry_run_would_delete"] = sum(len(tenant["deleted"]) for tenant in _tenant_lines(dry_command))
    rows = [StoreRow("scan"), StoreRow("dry-run")]
    commands = {"scan": ours(url, state_root, "scan", "--json"), "dry-run": dry_command}
    log(f"scan and cleanup --dry-run against the HGETALL floor ({runs} runs)")
    floor_samples: list[Sample] = []
    timed(floor(url))
    for row in rows:
        _, row.memory = timed(commands[row.name], sample_memory=True)
    interleaved([(floor_samples, floor(url)), *[(row.ours, commands[row.name]) for row in rows]], runs)
    for row in rows:
        row.floor = floor_samples
    log(f"real cleanup ({runs + 1} fresh copies)")
    real = StoreRow("cleanup")
    for run in range(runs + 1):  # run 0 is the warm-up and the check
        reset(server.port, state_root)
        floor_sample = timed(floor(url))[0]
        sample, memory = timed(ours(url, state_root, "cleanup"), sample_memory=run == 0)
        if run == 0:
            real.memory = memory
            checks["keys_left_by_cleanup"] = key_count(client)
            checks["keys_deleted_by_cleanup"] = checks["keys_in_store"] - checks["keys_left_by_cleanup"]
        else:
            real.ours.append(sample)
            real.floor.append(floor_sample)
    checks["dry_run_matches_cleanup"] = (
        checks["keys_deleted_by_cleanup"] == checks["keys_dry_run_would_delete"]
    )
    client.close()
    return [*rows, real]


def report(
    rows: Sequence[StoreRow],
    keys: int,
    instances: int,
    runs: int,
    info: dict[str, Any],
    checks: dict[str, Any],
    load: tuple[float, float],
) -> str:
    lines = [
        f"wa-sessions store benchmark (Redis), {datetime.date.today().isoformat()}: {keys:,} keys over {instances:,} instances,"
        f" {info['value_bytes'] / 1e6:,.0f} MB of values; redis-server {info['redis_version']} (used_memory {info['used_memory_human']})",
        f"machine: {machine()}",
        f"median of {runs} interleaved runs after 1 warm-up; load average {load[0]:.2f} before, {load[1]:.2f} after",
        "",
        "| command | ours (median s) | floor: pipelined `HGETALL` (median s) | ratio | target | CPU s ours / floor | client peak RSS all processes (PSS) | keys/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    names = {"scan": "`scan --json`", "dry-run": "`cleanup --dry-run --json`", "cleanup": "`cleanup` (real)"}
    for row in rows:
        verdict = "ok" if row.ratio <= TARGETS[row.name] else "MISSED"
        rss = row.memory.rss_kb / 1024
        lines.append(
            f"| {names[row.name]} | {median_wall(row.ours):.2f} | {median_wall(row.floor):.2f} | **{row.ratio:.2f}x**"
            f" | <= {TARGETS[row.name]}x {verdict} | {median_cpu(row.ours):.1f} / {median_cpu(row.floor):.1f}"
            f" | {rss:.0f} MB ({row.memory.pss_kb / 1024:.0f} MB) {'ok' if rss <= CLIENT_RSS_LIMIT_MB else 'MISSED'}"
            f" | {keys / median_wall(row.ours):,.0f} |"
        )
    lines += ["", "checks: " + ", ".join(f"{key} {value}" for key, value in checks.items())]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.stores",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--store", choices=["redis"], default="redis", help="the store to measure (default redis)"
    )
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys in all (default 1,000,000)")
    parser.add_argument("--instances", type=int, default=0, help="instances (default: keys / 200)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command (median; default 5)")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where the server's files go (default: a temp dir)"
    )
    parser.add_argument(
        "--json", type=Path, default=None, dest="json_path", help="also write the results here"
    )
    options = parser.parse_args(argv)
    instances = options.instances or max(options.keys // 200, 1)
    keys_per_instance = options.keys // instances
    if options.runs < 1 or keys_per_instance < 40:
        parser.error("--runs must be >= 1 and --keys / --instances >= 40")
    if shutil.which("redis-server") is None:
        parser.error("redis-server is needed (Debian: apt-get install redis-server)")

    def log(message: str) -> None:
        sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")

    workdir = Path(tempfile.mkdtemp(prefix="wa-sessions-store-bench-", dir=options.workdir))
    load_before = os.getloadavg()[0]
    server = start_redis(workdir / "redis")
    try:
        log(f"writing {instances * keys_per_instance:,} keys over {instances:,} instances")
        keys, value_bytes = store_data.populate(
            server.port, PRISTINE_DB, instances, keys_per_instance, time.time()
        )
        server_info = redis.Redis(port=server.port).info()
        info = {
            "value_bytes": value_bytes,
            "redis_version": server_info["redis_version"],
            "used_memory_human": server_info["used_memory_human"],
        }
        checks: dict[str, Any] = {"keys_written": keys}
        rows = measure(server, workdir, options.runs, checks, log)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    text = report(rows, keys, instances, options.runs, info, checks, (load_before, os.getloadavg()[0]))
    sys.stdout.write(text)
    if options.json_path is not None:
        document = {
            "report": text,
            "keys": keys,
            "instances": instances,
            "checks": checks,
            "rows": [
                {
                    "name": row.name,
                    "ours_median": median_wall(row.ours),
                    "floor_median": median_wall(row.floor),
                    "ratio": row.ratio,
                    "target": TARGETS[row.name],
                    "client_peak_rss_mb": row.memory.rss_kb / 1024,
                }
                for row in rows
            ],
        }
        options.json_path.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
