"""The floor a client can reach reading the same keys, run as its own process by bench/stores.py:

    python -m bench.store_floors redis://127.0.0.1:PORT/0 [PREFIX]

Redis: the instance hashes found with `SCAN MATCH <prefix>:instance:*`, then a bare `HGETALL` of
each, pipelined (100 instances a round trip) with redis-py; the values are only counted. Prints
the instances, fields and value bytes read.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import redis

BATCH = 100


def redis_floor(url: str, prefix: str) -> tuple[int, int, int]:
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:instance:*".encode(), count=1000))
    fields = size = 0
    for start in range(0, len(keys), BATCH):
        pipeline = client.pipeline(transaction=False)
        for key in keys[start : start + BATCH]:
            pipeline.hgetall(key)
        for values in pipeline.execute():
            fields += len(values)
            size += sum(len(value) for value in values.values())
    client.close()
    return len(keys), fields, size


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    url = arguments[0]
    prefix = arguments[1] if len(arguments) > 1 else "evolution-cache"
    instances, fields, size = redis_floor(url, prefix)
    sys.stdout.write(f"{instances} instances, {fields} fields, {size} value bytes\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
