"""Helpers for the fleet tests (multitenant-cleanup, emergency-cleanup, report, notifications):
a fleet of tenants at chosen status levels whose cleanup outcome is known by construction, and
a webhook receiver on 127.0.0.1."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .helpers import creds_document, write_file

#: Small thresholds so that tenants at every level stay small.
THRESHOLDS = {"warning": 20, "critical": 30, "trigger": 40, "emergency": 50, "danger": 60}

#: Files per level: every tenant holds 5 sessions 20 days old (the regular rules delete them) and
#: 5 sessions 5 days old (only the emergency profile, 3d, deletes them).
LEVEL_FILES = {"healthy": 15, "warning": 25, "critical": 35, "trigger": 45, "emergency": 55, "danger": 65}
OLD, MID = 5, 5


@dataclass
class FleetTenant:
    """A tenant written by `make_tenant`."""

    company: str
    path: Path
    files: int
    old: set[str] = field(default_factory=set)
    mid: set[str] = field(default_factory=set)


def make_tenant(folder: Path, now: float, files: int, *, old: int = OLD, mid: int = MID) -> FleetTenant:
    """A tenant of exactly `files` entries: creds.json, `old` sessions 20 days old, `mid` sessions
    5 days old, and identity keys 1 hour old (kept by every profile)."""
    folder.mkdir(parents=True, exist_ok=True)
    tenant = FleetTenant(folder.name.removeprefix("company_"), folder, files)
    write_file(folder, "creds.json", creds_document(1000), 0.01, now)
    for index in range(old):
        name = f"session-1555000{index:04d}.0.json"
        write_file(folder, name, json.dumps({"old": index}), 20, now)
        tenant.old.add(name)
    for index in range(mid):
        name = f"session-1666000{index:04d}.0.json"
        write_file(folder, name, json.dumps({"mid": index}), 5, now)
        tenant.mid.add(name)
    for index in range(files - 1 - old - mid):
        write_file(folder, f"identity-key-1777000{index:04d}.1.json", json.dumps({"i": index}), 1 / 24, now)
    return tenant


def make_fleet(root: Path, now: float, levels: Mapping[str, str] | None = None) -> dict[str, FleetTenant]:
    """One tenant per status level (company id = level name), or the given company -> level."""
    chosen = levels if levels is not None else {level: level for level in LEVEL_FILES}
    return {
        company: make_tenant(root / f"company_{company}", now, LEVEL_FILES[level])
        for company, level in chosen.items()
    }


def write_fleet_config(path: Path, root: Path, **extra: Any) -> Path:
    """A YAML config (JSON is YAML): root, the small thresholds, and any other keys."""
    settings: dict[str, Any] = {"root": str(root), "thresholds": THRESHOLDS}
    settings.update(extra)
    path.write_text(json.dumps(settings), encoding="utf-8")
    return path


def on_disk(folder: Path) -> set[str]:
    return {name for name in os.listdir(folder) if not name.startswith(".")}


def tenants_by_company(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    companies = [tenant["company"] for tenant in document["tenants"]]
    assert len(companies) == len(set(companies)), companies
    return {tenant["company"]: tenant for tenant in document["tenants"]}


# ---------------------------------------------------------------- a webhook receiver on loopback


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    method: str = "POST"

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body.decode("utf-8"))


class Webhook:
    """A real HTTP server on 127.0.0.1 in a thread that records every request (POST, GET).
    `status` is what it answers, with a Location header when `location` is given; `delay` is how
    long it waits before answering."""

    def __init__(self, status: int = 200, delay: float = 0.0, location: str | None = None):
        self.status = status
        self.delay = delay
        self.location = location
        self.received: list[Received] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.do_POST()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                hook.received.append(Received(self.path, dict(self.headers.items()), body, self.command))
                time.sleep(hook.delay)
                try:
                    self.send_response(hook.status)
                    if hook.location is not None:
                        self.send_header("Location", hook.location)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the client gave up (timeout): nothing to answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port() -> int:
    """A loopback port nothing listens on."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
