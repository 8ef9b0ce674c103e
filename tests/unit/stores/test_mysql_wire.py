"""The MySQL store's pure parts: lock names, placeholders, a batch's outcomes, error reasons."""

from __future__ import annotations

import pymysql

from wa_sessions.store_url import parse_mysql_url
from wa_sessions.stores.mysql_wire import LOCK_NAME_MAX, lock_name, outcome, placeholders, reason_of

ADDRESS = parse_mysql_url("mysql://baileys:s3cr3t@db:3306/base")


def test_lock_name_is_readable_and_hashed_only_past_mysql_limit() -> None:
    assert lock_name("base", "acme-01") == "wa-sessions:base:acme-01"
    long = lock_name("base", "x" * 50)
    assert len(long) <= LOCK_NAME_MAX and long.startswith("wa-sessions:")
    assert long != lock_name("base", "x" * 49 + "y")


def test_placeholders_for_ids_and_pairs() -> None:
    assert placeholders(3) == "%s, %s, %s"
    assert placeholders(2, 2) == "(%s, %s), (%s, %s)"


def test_outcome_of_a_single_delete() -> None:
    assert outcome(b"k", b"d", None, {}, 1, "L") is None
    assert isinstance(outcome(b"k", b"d", None, {}, 0, "L"), FileNotFoundError)
    assert outcome(b"k", b"d", None, {b"k": b"e"}, 0, "L") == "modified since the plan"
    lost = outcome(b"k", b"d", None, {b"k": b"d"}, 0, "L")
    assert isinstance(lost, OSError) and "lock L was lost" in str(lost)


def test_outcome_in_a_batch_tells_gone_before_from_deleted() -> None:
    before = {b"a": b"d"}
    assert outcome(b"a", b"d", before, {}, 1, "L") is None
    assert isinstance(outcome(b"b", b"d", before, {}, 1, "L"), FileNotFoundError)


def test_reason_never_holds_the_password() -> None:
    denied = pymysql.err.OperationalError(1045, "Access denied for user 'baileys'@'x' (using password: YES)")
    assert reason_of(denied, ADDRESS) == "authentication failed for user 'baileys' (wrong user or password?)"
    echoed = pymysql.err.OperationalError(2003, "cannot connect with s3cr3t\n to db")
    assert reason_of(echoed, ADDRESS) == "cannot connect with *** to db"
    assert reason_of(pymysql.err.InterfaceError(0, ""), ADDRESS) == "connection lost"
