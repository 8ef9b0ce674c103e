"""A synthetic sessions root with Baileys-faithful names and aged files (demo and benchmark)."""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

DAY = 86400
OWN_PHONE = "15550000000"


def _write(path: Path, content: str, mtime: float) -> None:
    path.write_text(content, encoding="utf-8")
    os.utime(path, (mtime, mtime))


def make_tenant(folder: Path, rng: random.Random, now: float, files: int = 300) -> int:
    """Write one tenant folder of about `files` entries; return how many were written.

    The mix: creds.json, app-state keys and versions, LID mappings (protected); a batch of
    pre-keys sharing one mtime; sessions and sender keys with ages spread over 0-40 days; our own
    sender key with its sender-key-memory partner; identity keys, device lists, tctokens; and one
    file Baileys never writes.
    """
    folder.mkdir(parents=True, exist_ok=True)
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
    written = 0

    def put(name: str, age_days: float, body: object | None = None) -> None:
        nonlocal written
        content = json.dumps(body if body is not None else {"v": rng.randrange(1 << 30)})
        _write(folder / name, content, now - age_days * DAY)
        written += 1

    put("creds.json", 0.01, creds)
    put("app-state-sync-key-AAAAAB3x.json", 60)
    put("app-state-sync-key-AAAAAC__q.json", 30)
    for name in ("regular", "regular_high", "regular_low", "critical_block"):
        put(f"app-state-sync-version-{name}.json", rng.uniform(0, 20))
    put(f"lid-mapping-{OWN_PHONE}.json", 90, "100000000000001")
    batch_age = rng.uniform(1, 40)
    for key_id in range(first_pre_key, next_pre_key_id):
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
