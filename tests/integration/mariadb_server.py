"""A real MariaDB for the MySQL store's tests, and auth state written as mysql-baileys writes it.

`start_mariadb(folder)` runs Debian's `mariadbd` as a child process: data in a fresh data dir
made by `mariadb-install-db`, its own socket and pid file, TCP on 127.0.0.1 at a random free
port, no system service and no option file (`--no-defaults`). Run as root (the tests are), the
server drops to `nobody` (`--user=nobody`), so its folder is made world-traversable and owned by
nobody. The server's root user has no password and is reached only over the unix socket (the
admin client); the tests' user (`wa`, with a password, real authentication) owns every database
and reaches the server over TCP, as wa-sessions does. `stop()` kills it and removes its folder.

Rows are written as mysql-baileys' `writeData` writes them (src/Mysql/index.ts, 1.5.4..1.5.6):
`INSERT INTO auth (session, id, value) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE value = ?` with
the value `JSON.stringify(value, BufferJSON.replacer)` (Buffers as {"type":"Buffer","data":
base64}), into the table its `connection()` creates (`CREATE_TABLE`). Row ids are
`${type}-${id}` unescaped (`sender-key-<group>::<user>::<device>`) and `creds` for the creds.

Fixtures: `mariadb` (one server per test session, started on first use) and `mysql_db` (a fresh
database per test on it, dropped after); import them into a test module to use them.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from .auth_state import (  # noqa: F401 (the test data, re-exported for the MySQL and interop tests)
    GROUP,
    OTHER_GROUP,
    OWN_LID,
    OWN_PHONE,
    PRE_KEYS,
    STANDARD_KEYS,
    buffer,
    creds_value,
    digest,
    standard_values,
)

MARIADBD = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin:/usr/local/sbin")
INSTALL_DB = shutil.which("mariadb-install-db")
HAVE_MARIADB = MARIADBD is not None and INSTALL_DB is not None
SKIP_REASON = "MariaDB is not installed (Debian: apt-get install mariadb-server; .ci/run installs it)"

USER = "wa"
TABLE = "auth"
# mysql-baileys 1.5.4's `connection()` (src/Mysql/index.ts): the table it creates when missing.
CREATE_TABLE = (
    "CREATE TABLE IF NOT EXISTS `{table}` (`session` varchar(50) NOT NULL, `id` varchar(80) NOT NULL,"
    " `value` LONGTEXT DEFAULT NULL, UNIQUE KEY `idxunique` (`session`,`id`), KEY `idxsession`"
    " (`session`), KEY `idxid` (`id`)) ENGINE=MyISAM;"
)
# mysql-baileys' `writeData`.
WRITE_SQL = "INSERT INTO {table} (session, id, value) VALUES (%s, %s, %s) ON DUPLICATE KEY UPDATE value = %s"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _connect(**options: Any) -> Any:
    import pymysql

    return pymysql.connect(autocommit=True, charset="utf8mb4", connect_timeout=5, **options)


@dataclass
class MariaDB:
    """A running mariadbd: where it listens, the tests' user and its password."""

    folder: Path
    port: int
    process: subprocess.Popen[bytes]
    user: str = USER
    password: str = field(default_factory=lambda: "pw-" + secrets.token_hex(8), repr=False)
    host: str = "127.0.0.1"

    @property
    def socket_path(self) -> Path:
        return self.folder / "mysqld.sock"

    def admin(self) -> Any:
        """A root connection over the unix socket (no database selected)."""
        return _connect(unix_socket=str(self.socket_path), user="root")

    def connect(self, database: str | None = None) -> Any:
        """A connection as the tests' user over TCP, as wa-sessions makes."""
        return _connect(
            host=self.host, port=self.port, user=self.user, password=self.password, database=database
        )

    def url(self, database: str, table: str = TABLE, password: str | None = None) -> str:
        secret = self.password if password is None else password
        return (
            f"mysql://{self.user}:{quote(secret, safe='')}@{self.host}:{self.port}/{database}?table={table}"
        )

    def create_database(self, name: str | None = None) -> str:
        name = name or "t_" + secrets.token_hex(6)
        with contextlib.closing(self.admin()) as connection, connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}`")
        return name

    def drop_database(self, name: str) -> None:
        with contextlib.closing(self.admin()) as connection, connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the server (its folder stays: `stop()` removes it)."""
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


def _server_folder() -> Path:
    """A folder the server (nobody, when we are root) can enter: under /tmp, not pytest's 0700 one."""
    folder = Path(tempfile.mkdtemp(prefix="wa-mariadb-"))
    folder.chmod(0o755)
    if os.geteuid() == 0:
        os.chown(folder, 65534, 65534)
    return folder


def _server_argv(folder: Path, port: int) -> list[str]:
    assert MARIADBD is not None
    argv = [MARIADBD, "--no-defaults", f"--datadir={folder / 'data'}", f"--socket={folder / 'mysqld.sock'}"]
    argv += [f"--pid-file={folder / 'mysqld.pid'}", f"--log-error={folder / 'error.log'}"]
    argv += ["--skip-networking=0", "--bind-address=127.0.0.1", f"--port={port}"]
    # as Debian's packaged config (50-server.cnf) sets them; small and fast for tests
    argv += ["--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci"]
    argv += [
        "--innodb-buffer-pool-size=16M",
        "--innodb-log-file-size=8M",
        "--innodb-flush-log-at-trx-commit=2",
    ]
    argv += ["--skip-log-bin", "--max-connections=200", "--skip-name-resolve"]
    if os.geteuid() == 0:
        argv.append("--user=nobody")
    return argv


def start_mariadb() -> MariaDB:
    """Install a data dir and start mariadbd on a free port of 127.0.0.1; create the tests' user
    (password, every privilege on every database). Raise RuntimeError (with its log) if it fails."""
    assert INSTALL_DB is not None
    folder = _server_folder()
    install = [INSTALL_DB, "--no-defaults", f"--datadir={folder / 'data'}", "--skip-test-db"]
    install += ["--auth-root-authentication-method=normal", "--skip-name-resolve"]
    if os.geteuid() == 0:
        install.append("--user=nobody")
    done = subprocess.run(install, capture_output=True, timeout=120, check=False)
    if done.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"mariadb-install-db failed: {done.stderr.decode(errors='replace')[-2000:]}")
    port = free_port()
    process = subprocess.Popen(
        _server_argv(folder, port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    server = MariaDB(folder, port, process)
    _wait_until_up(server)
    with contextlib.closing(server.admin()) as connection, connection.cursor() as cursor:
        for host in ("127.0.0.1", "localhost"):
            cursor.execute(f"CREATE USER '{USER}'@'{host}' IDENTIFIED BY %s", (server.password,))
            cursor.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'{host}'")
    return server


def restart(server: MariaDB) -> None:
    """Start a killed server again on the same data dir and port."""
    server.kill()
    server.process = subprocess.Popen(
        _server_argv(server.folder, server.port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _wait_until_up(server)


def _wait_until_up(server: MariaDB) -> None:
    import pymysql

    deadline = time.monotonic() + 60
    while True:
        try:
            server.admin().close()
            return
        except pymysql.err.OperationalError:
            if not server.alive() or time.monotonic() > deadline:
                log = (server.folder / "error.log").read_text(errors="replace")[-2000:]
                server.stop()
                raise RuntimeError(f"mariadbd did not start on port {server.port}: {log}") from None
            time.sleep(0.1)


# ---------------------------------------------------------------- rows as mysql-baileys writes them


def baileys_text(value: Any) -> str:
    """`JSON.stringify(value, BufferJSON.replacer)` of an already-replaced value: compact, UTF-8."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def create_table(connection: Any, table: str = TABLE) -> None:
    with connection.cursor() as cursor:
        cursor.execute(CREATE_TABLE.format(table=table))


def write_data(connection: Any, session: str, row_id: str | bytes, value: Any, table: str = TABLE) -> None:
    """mysql-baileys' writeData: an object is stringified, a string written as it is."""
    text = value if isinstance(value, str | bytes) else baileys_text(value)
    with connection.cursor() as cursor:
        cursor.execute(WRITE_SQL.format(table=table), (session, row_id, text, text))


def rows(connection: Any, session: str, table: str = TABLE) -> dict[bytes, bytes]:
    """A session's rows: raw id -> raw value (b"" for NULL)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT CAST(id AS BINARY), CAST(value AS BINARY) FROM `{table}` WHERE session = %s", (session,)
        )
        return {bytes(row_id): b"" if value is None else bytes(value) for row_id, value in cursor.fetchall()}


def write_standard_session(connection: Any, session: str, table: str = TABLE) -> None:
    """One session with a key of every category and pre-keys 1..60 (nextPreKeyId 61)."""
    for row_id, value in standard_values():
        write_data(connection, session, row_id, value, table)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDB]:
    """One MariaDB for the test session (skips the test where MariaDB is not installed)."""
    if not HAVE_MARIADB:
        pytest.skip(SKIP_REASON)
    server = start_mariadb()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mysql_db(mariadb: MariaDB) -> Iterator[str]:
    """A fresh, empty database on the shared server, dropped after the test."""
    name = mariadb.create_database()
    try:
        yield name
    finally:
        if mariadb.alive():
            mariadb.drop_database(name)
