"""A synthetic sessions root with Baileys-faithful names and aged files (demo and benchmark)."""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

DAY = 86400
OWN_PHONE = "15550000000"


@dataclass(frozen=True, slots=True)
class DemoFile:
    """One file of a synthetic tenant: its name, its content and its mtime (epoch seconds)."""

    name: str
    content: str
    mtime: float


def _write(path: Path, content: str, mtime: float) -> None:
    path.write_text(content, encoding="utf-8")
    os.utime(path, (mtime, mtime))


def make_tenant(folder: Path, rng: random.Random, now: float, files: int = 300) -> int:
    """Write one tenant folder of `files` entries (see `tenant_files`); return how many were
    written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for demo_file in tenant_files(rng, now, files):
        _write(folder / demo_file.name, demo_file.content, demo_file.mtime)
        written += 1
    return written


def tenant_files(
    rng: random.Random, now: float, files: int = 300, pre_key_batches: int = 1
) -> list[DemoFile]:
    """Given a random source, `now` and a size, return the files of one tenant (`files` entries,
    at least 40), as Baileys names them.

    The mix: creds.json, app-state keys and versions, LID mappings (protected); pre-keys in
    `pre_key_batches` id batches, each sharing one mtime (Baileys writes a batch at once); sessions
    and sender keys with ages spread over 0-40 days; our own sender key with its sender-key-memory
    partner; identity keys, device lists, tctokens; and one file Baileys never writes.
    """
    protected = 8
    rest = max(files - protected - 4, 20)
    pre_keys = max(rest * 2 // 5, 10)
    sessions = max(rest // 4, 4)
    sender_keys = max(rest - pre_keys - sessions - 12, 4)
    next_pre_key_id = 1 + pre_keys + rng.randrange(0, 200)
    first_pre_key = next_pre_key_id - pre_keys
    creds = {
        "noiseKey": {"private": {"type": "Buffer", "data": "AA=="}},
        "registrationId": rng.randrange(1, 16380),
        "nextPreKeyId": next_pre_key_id,
        "firstUnuploadedPreKeyId": next_pre_key_id,
        "me": {"id": f"{OWN_PHONE}:12@s.whatsapp.net", "lid": "100000000000001:12@lid"},
    }
    written: list[DemoFile] = []

    def put(name: str, age_days: float, body: object | None = None) -> None:
        content = json.dumps(body if body is not None else {"v": rng.randrange(1 << 30)})
        written.append(DemoFile(name, content, now - age_days * DAY))

    put("creds.json", 0.01, creds)
    put("app-state-sync-key-AAAAAB3x.json", 60)
    put("app-state-sync-key-AAAAAC__q.json", 30)
    for name in ("regular", "regular_high", "regular_low", "critical_block"):
        put(f"app-state-sync-version-{name}.json", rng.uniform(0, 20))
    put(f"lid-mapping-{OWN_PHONE}.json", 90, "100000000000001")
    batch_age = rng.uniform(1, 40)
    batch_size = -(-pre_keys // max(pre_key_batches, 1))
    for key_id in range(first_pre_key, next_pre_key_id):
        if key_id > first_pre_key and (key_id - first_pre_key) % batch_size == 0:
            batch_age = rng.uniform(0, batch_age)  # a later batch, uploaded more recently
        put(f"pre-key-{key_id}.json", batch_age)
    for index in range(sessions):
        user = 15550000001 + index
        put(f"session-{user}.{index % 3}.json", rng.uniform(0, 40))
    for index in range(sender_keys):
        group = 120363000000000000 + index % 7
        sender = 15550000001 + index
        put(f"sender-key-{group}@g.us--{sender}--{index % 3}.json", rng.uniform(0, 10))
    for index in range(3):
        group = 120363000000000000 + index
        put(f"sender-key-{group}@g.us--{OWN_PHONE}--0.json", 2 + index * 2)
        put(f"sender-key-memory-{group}@g.us.json", rng.uniform(0, 5))
    put("identity-key-15550000001.2.json", 12)
    for index in range(files - len(written) - 3):  # pad to exactly `files` with peers' identities
        put(f"identity-key-{15560000001 + index}.0.json", 1 + index % 30)
    put("device-list-15550000001.json", 3)
    put("tctoken-15550000001@s.whatsapp.net.json", 7)
    put("notes.txt", 100)
    return written


def make_demo(root: Path, tenants: int = 3, seed: int = 20261122) -> int:
    """Create a sessions root of `tenants` company folders; return the number of files written."""
    rng = random.Random(seed)
    now = time.time()
    root.mkdir(parents=True, exist_ok=True)
    sizes = (120, 178, 260)
    return sum(
        make_tenant(root / f"company_{962302 + index}", rng, now, sizes[index % len(sizes)])
        for index in range(tenants)
    )
