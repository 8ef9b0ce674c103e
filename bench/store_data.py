"""A synthetic fleet of Baileys auth state for the store benchmark (bench/stores.py; written into
Redis by bench/store_redis.py, into MariaDB by bench/store_mysql.py).

Each instance gets the key mix of the folder benchmark's tenants (wa_sessions/demo.py: pre-keys
in id batches, sessions and sender keys aged over weeks, protected keys, our own sender keys with
their sender-key-memory partners), as Evolution API and mysql-baileys name them: `<type>-<id>` with
Baileys' ids unescaped, the value the BufferJSON text. Values are
of realistic size: a session 1-3 KB, a pre-key about 200 B, a sender key 0.4-1 KB, creds 1.5 KB.

Age: neither store keeps any, so wa-sessions records when it first saw each value (SPEC §10). The fleet is written as if
wa-sessions had been watching it: 90% of the keys get a seen record dated by the key's age in
the demo mix (up to 40 days back; none within two hours of a rule's age, as in bench/generate.py,
so the dry run and the cleanup minutes later judge every key alike), 10% none (keys written since
the last run: age 0).
"""

from __future__ import annotations

import base64
import json
import multiprocessing
import random
from collections.abc import Callable, Iterator
from typing import Any

from bench.generate import clear_of_rule_ages
from wa_sessions.demo import tenant_files

SEEN_SHARE = 0.9


def instance_id(index: int) -> str:
    """A UUID-shaped instance id, as Evolution API's."""
    return f"{index:08x}-0b9d-4e61-9a51-{index:012x}"


def field_of(file_name: str) -> str:
    """The Evolution field of a key file name of the demo mix (the inverse of Baileys' escaping)."""
    name = file_name.removesuffix(".json")
    if name.startswith("sender-key-") and not name.startswith("sender-key-memory-"):
        return name.replace("--", "::")
    return name.replace("__", "/")


def _buffer(rng: random.Random, size: int) -> dict[str, str]:
    return {"type": "Buffer", "data": base64.b64encode(rng.randbytes(size)).decode()}


def key_document(field: str, rng: random.Random, creds: Any) -> Any:
    """A value of realistic size for the key `field` (BufferJSON form)."""
    if field == "creds":
        return {
            **creds,
            "signedIdentityKey": _buffer(rng, 64),
            "signedPreKey": _buffer(rng, 96),
            "advSecretKey": _buffer(rng, 32),
            "account": _buffer(rng, 500),
        }
    if field.startswith("pre-key-"):
        return {"private": _buffer(rng, 32), "public": _buffer(rng, 32)}
    if field.startswith("session-"):
        return {
            "_sessions": {_buffer(rng, 33)["data"]: {"chain": _buffer(rng, rng.randrange(500, 1700))}},
            "version": "v1",
        }
    if field.startswith("sender-key-memory-"):
        return {f"{15550000001 + number}:0@s.whatsapp.net": True for number in range(rng.randrange(2, 8))}
    if field.startswith("sender-key-"):
        return [
            {
                "senderKeyId": rng.randrange(1 << 31),
                "senderChainKey": _buffer(rng, 32),
                "senderSigningKey": _buffer(rng, rng.randrange(200, 600)),
            }
        ]
    if field.startswith("app-state-sync-version-"):
        return {"version": rng.randrange(1000), "hash": _buffer(rng, 128), "indexValueMap": {}}
    if field.startswith("lid-mapping-"):
        return "100000000000001"
    return {"key": _buffer(rng, 33)}


def baileys_text(document: Any) -> str:
    """`JSON.stringify(value, BufferJSON.replacer)`: what mysql-baileys stores."""
    return json.dumps(document, separators=(",", ":"))


def instance_keys(
    index: int, keys: int, now: float, seed: int = 1
) -> Iterator[tuple[str, str, float | None]]:
    """The keys of instance `index`: (field or row id, BufferJSON text, first seen epoch seconds
    or None)."""
    rng = random.Random(seed * 1_000_003 + index)
    files = [
        demo for demo in tenant_files(rng, now, keys + 1, pre_key_batches=3) if demo.name.endswith(".json")
    ]
    creds = json.loads(files[0].content)
    for demo in files[:keys]:
        field = field_of(demo.name)
        first_seen = clear_of_rule_ages(demo.mtime, now) if rng.random() < SEEN_SHARE else None
        yield field, baileys_text(key_document(field, rng, creds)), first_seen


def in_processes(write: Callable[[range], tuple[int, int]], instances: int, jobs: int = 2) -> tuple[int, int]:
    """Call `write` on `jobs` shares of the instance indexes in forked processes; return the sums
    of its (keys, value bytes)."""
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        results = pool.map(write, [range(start, instances, jobs) for start in range(jobs)])
    return sum(keys for keys, _ in results), sum(size for _, size in results)
