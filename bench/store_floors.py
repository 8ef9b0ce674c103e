"""The floor a client can reach reading the same keys, run as its own process by bench/stores.py:

    python -m bench.store_floors redis://127.0.0.1:PORT/0 [PREFIX]
    python -m bench.store_floors 'mysql://USER:PASSWORD@127.0.0.1:PORT/DATABASE?table=auth'

Redis: the instance hashes found with `SCAN MATCH <prefix>:instance:*`, then a bare `HGETALL` of
each, pipelined (100 instances a round trip) with redis-py; the values are only counted.
MySQL: a bare `SELECT session, id, LENGTH(value) FROM auth`, streamed (PyMySQL's unbuffered
cursor). Prints the tenants, keys and value bytes read.
"""

from __future__ import annotations

import sys
import urllib.parse
from collections.abc import Sequence

BATCH = 100


def redis_floor(url: str, prefix: str) -> tuple[int, int, int]:
    import redis

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


def mysql_floor(url: str) -> tuple[int, int, int]:
    import pymysql
    import pymysql.cursors

    parts = urllib.parse.urlsplit(url)
    table = urllib.parse.parse_qs(parts.query).get("table", ["auth"])[0]
    connection = pymysql.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=urllib.parse.unquote(parts.username or ""),
        password=urllib.parse.unquote(parts.password or ""),
        database=parts.path.lstrip("/"),
        charset="utf8mb4",
        cursorclass=pymysql.cursors.SSCursor,
    )
    sessions: set[str] = set()
    rows = size = 0
    with connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT session, id, LENGTH(value) FROM `{table}`")
        for session, _id, length in cursor:
            sessions.add(session)
            rows += 1
            size += length or 0
    return len(sessions), rows, size


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    url = arguments[0]
    prefix = arguments[1] if len(arguments) > 1 else "evolution-cache"
    tenants, keys, size = mysql_floor(url) if url.startswith("mysql://") else redis_floor(url, prefix)
    sys.stdout.write(f"{tenants} tenants, {keys} keys, {size} value bytes\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
