"""A process that writes tenant folders the way Baileys' auth state does, for the live-writer test.

    python baileys_like_writer.py ROOT SECONDS SEED LOG

For SECONDS it picks a tenant and an operation at random:

- upload a batch of pre-keys (one file each), then update creds.json (temp file, rename);
- consume a pre-key (a contact used it: the file is removed);
- use a session or a sender key: rewrite the file in place (`writeFile`: O_TRUNC, same inode);
- use a session the newer way: copy the key file to `<file>.bak`, write `<file>.tmp`, rename it
  over the key file;
- let time pass: write a session or sender key with an old mtime (a key last used weeks ago),
  which the writer often uses again moments later;
- open a new session.

Every operation is appended to LOG as one JSON line: `{"time", "tenant", "file", "op"}` where
`op` is `fresh` (the file now holds a value just written), `aged` (written with an old mtime),
`removed` or `renamed` (the name went away on purpose). A file whose last operation is `fresh`
must still exist when the writer stops: if it is gone, a cleaner deleted a key in use.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sys
import time
from pathlib import Path

DAY = 86400.0


class Writer:
    def __init__(self, root: Path, rng: random.Random, log: list[dict[str, object]]):
        self.root = root
        self.rng = rng
        self.log = log
        self.tenants = sorted(p for p in root.iterdir() if p.name.startswith("company_"))
        self.counter = 0

    def note(self, tenant: Path, name: str, op: str) -> None:
        self.log.append({"time": time.time(), "tenant": tenant.name, "file": name, "op": op})

    def write(self, tenant: Path, name: str, age_days: float = 0.0) -> None:
        self.counter += 1
        payload = json.dumps({"value": self.counter, "noise": self.rng.randbytes(40).hex()})
        with open(tenant / name, "w") as writer:  # Baileys' writeFile: O_CREAT | O_TRUNC
            writer.write(payload)
        if age_days:
            moment = time.time() - age_days * DAY
            os.utime(tenant / name, (moment, moment))
            self.note(tenant, name, "aged")
        else:
            self.note(tenant, name, "fresh")

    def names(self, tenant: Path, prefix: str) -> list[str]:
        return sorted(
            name
            for name in os.listdir(tenant)
            if name.startswith(prefix)
            and name.endswith(".json")
            and not name.startswith("sender-key-memory-")
        )

    def creds(self, tenant: Path) -> dict[str, object]:
        try:
            document = json.loads((tenant / "creds.json").read_text())
        except (OSError, ValueError):
            return {}
        return document if isinstance(document, dict) else {}

    def upload_pre_keys(self, tenant: Path) -> None:
        creds = self.creds(tenant)
        next_id = creds.get("nextPreKeyId")
        if not isinstance(next_id, int):
            return
        count = self.rng.randrange(5, 40)
        for key_id in range(next_id, next_id + count):
            self.write(tenant, f"pre-key-{key_id}.json")
        creds["nextPreKeyId"] = next_id + count
        creds["firstUnuploadedPreKeyId"] = next_id + count
        temp = tenant / "creds.json.tmp"
        temp.write_text(json.dumps(creds))
        os.replace(temp, tenant / "creds.json")
        self.note(tenant, "creds.json", "fresh")

    def consume_pre_key(self, tenant: Path) -> None:
        pre_keys = self.names(tenant, "pre-key-")
        if pre_keys:
            name = self.rng.choice(pre_keys)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tenant / name)
            self.note(tenant, name, "removed")

    def use_in_place(self, tenant: Path, prefix: str) -> None:
        names = self.names(tenant, prefix)
        if names:
            self.write(tenant, self.rng.choice(names))

    def use_with_backup(self, tenant: Path) -> None:
        sessions = self.names(tenant, "session-")
        if not sessions:
            return
        name = self.rng.choice(sessions)
        try:
            current = (tenant / name).read_bytes()
        except FileNotFoundError:
            current = None
        if current is not None:
            (tenant / f"{name}.bak").write_bytes(current)
            self.note(tenant, f"{name}.bak", "fresh")
        self.write(tenant, f"{name}.tmp")
        os.replace(tenant / f"{name}.tmp", tenant / name)
        self.note(tenant, f"{name}.tmp", "renamed")
        self.note(tenant, name, "fresh")

    def let_time_pass(self, tenant: Path) -> None:
        self.counter += 1
        if self.rng.random() < 0.6:
            name, age = f"session-1777{self.counter:07d}.0.json", self.rng.uniform(16, 40)
        else:
            group = f"120363{self.rng.randrange(10**12):012d}@g.us"
            name, age = f"sender-key-{group}--1888{self.counter:07d}--0.json", self.rng.uniform(4, 10)
        self.write(tenant, name, age)
        if self.rng.random() < 0.7:  # used again moments later
            time.sleep(self.rng.uniform(0, 0.02))
            self.write(tenant, name)

    def step(self) -> None:
        tenant = self.rng.choice(self.tenants)
        operation = self.rng.choices(
            ["upload", "consume", "session", "sender", "backup", "time", "new"],
            weights=[1, 3, 6, 4, 4, 8, 2],
        )[0]
        if operation == "upload":
            self.upload_pre_keys(tenant)
        elif operation == "consume":
            self.consume_pre_key(tenant)
        elif operation == "session":
            self.use_in_place(tenant, "session-")
        elif operation == "sender":
            self.use_in_place(tenant, "sender-key-")
        elif operation == "backup":
            self.use_with_backup(tenant)
        elif operation == "time":
            self.let_time_pass(tenant)
        else:
            self.counter += 1
            self.write(tenant, f"session-1999{self.counter:07d}.0.json")


def main(argv: list[str]) -> int:
    root, seconds, seed, log_path = Path(argv[0]), float(argv[1]), int(argv[2]), Path(argv[3])
    log: list[dict[str, object]] = []
    writer = Writer(root, random.Random(seed), log)
    deadline = time.monotonic() + seconds
    steps = 0
    while time.monotonic() < deadline:
        writer.step()
        steps += 1
        if steps % 20 == 0:
            time.sleep(0.001)
    log_path.write_text("".join(json.dumps(entry) + "\n" for entry in log))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
