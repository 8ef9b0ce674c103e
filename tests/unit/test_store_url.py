"""The `store` URL (SPEC §10): parsed, refused with the key named, never showing a password."""

from __future__ import annotations

import pytest

from wa_sessions.config import ConfigError, load_settings
from wa_sessions.store_url import (
    MySQLAddress,
    RedisAddress,
    check_store_url,
    parse_mysql_url,
    parse_redis_url,
    redact_store_url,
)


def test_parse_redis_url_reads_server_database_prefix_and_credentials() -> None:
    address = parse_redis_url("redis://evo:p%40ss@cache.internal:6380/2?prefix=acme")
    assert address == RedisAddress("cache.internal", 6380, 2, "acme", False, "evo", "p@ss")
    assert address.shown == "redis://cache.internal:6380/2?prefix=acme"
    assert "p@ss" not in repr(address)


def test_parse_redis_url_defaults_to_port_6379_database_0_and_evolution_cache() -> None:
    address = parse_redis_url("rediss://cache")
    assert (address.port, address.db, address.prefix, address.tls) == (6379, 0, "evolution-cache", True)


def test_redact_store_url_hides_all_user_info() -> None:
    assert redact_store_url("redis://u:secret@h:1/0?prefix=x") == "redis://***@h:1/0?prefix=x"
    assert redact_store_url("redis://h:1/0") == "redis://h:1/0"
    # a password with an unescaped `/`, `?` or `@` is still hidden whole
    assert redact_store_url("mysql://u:se/cr?et@h:1/db") == "mysql://***@h:1/db"
    assert redact_store_url("mysql://u:se@cret@h:1/db?table=auth") == "mysql://***@h:1/db?table=auth"


def test_parse_mysql_url_reads_server_database_table_and_credentials() -> None:
    address = parse_mysql_url("mysql://baileys:p%40ss%2F1@db.internal:3307/wa?table=auth_2")
    assert address == MySQLAddress("db.internal", 3307, "wa", "baileys", "auth_2", "p@ss/1")
    assert address.shown == "mysql://db.internal:3307/wa?table=auth_2"
    assert "p@ss" not in repr(address)


def test_parse_mysql_url_defaults_to_port_3306_and_table_auth() -> None:
    address = parse_mysql_url("mysql://root@[::1]/base")
    assert (address.host, address.port, address.table, address.password) == ("::1", 3306, "auth", None)
    assert address.shown == "mysql://[::1]:3306/base?table=auth"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis://:secret@h:70000/0", "invalid port"),
        ("redis://:secret@h:0/0", "invalid port 0"),
        ("redis://:secret@/0", "no host"),
        ("redis://:secret@h:1/zero", "invalid database"),
        ("redis://:secret@h:1/0?db=1", "unknown parameter"),
        ("redis://:secret@h:1/0?prefix=a*b", "invalid prefix"),
        ("mysql://u:secret@h:99999/baileys", "invalid port"),
        ("mysql://u:secret@h:0/baileys", "invalid port 0"),
        ("mysql://u:secret@h:x/baileys", "invalid port"),
        ("mysql://u:secret@/baileys", "no host"),
        ("mysql://:secret@h/baileys", "no user"),
        ("mysql://u:secret@h:3306", "no database"),
        ("mysql://u:secret@h:3306/", "no database"),
        ("mysql://u:secret@h/a`b", "invalid database name"),
        ("mysql://u:secret@h/db?prefix=x", "unknown parameter"),
        ("mysql://u:secret@h/db?table=auth;drop", "invalid table name"),
        ("mysql://u:secret/x@h/db", "invalid port or host"),
        ("mysqlx://u:secret@h/db", "unsupported store"),
        ("postgres://u:secret@h/x", "unsupported store"),
        ("  ", "must not be empty"),
    ],
)
def test_a_bad_store_url_names_the_key_and_not_the_password(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=says) as raised:
        check_store_url(url)
    assert "secret" not in str(raised.value)
    with pytest.raises(ConfigError) as config_error:
        load_settings(None, {"store": url})
    assert str(config_error.value).startswith("invalid configuration: store: ")
    assert "secret" not in str(config_error.value)


def test_shown_store_is_the_url_without_password() -> None:
    settings = load_settings(None, {"store": "redis://:secret@h:1/0"})
    assert settings.shown_store == "redis://***@h:1/0"
    assert load_settings().shown_store is None
