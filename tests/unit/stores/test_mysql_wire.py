"""The MySQL store's pure parts: lock names, placeholders, a batch's statement and outcomes,\nerror reasons."""

from __future__ import annotations

import pymysql

from wa_sessions.store_url import parse_mysql_url
from wa_sessions.stores.mysql_keys import HELD, outcomes
from wa_sessions.stores.mysql_wire import LOCK_NAME_MAX, delete_statement, lock_name, placeholders, reason_of

ADDRESS = parse_mysql_url("mysql://baileys:s3cr3t@db:3306/base")


def test_lock_name_is_readable_and_hashed_only_past_mysql_limit() -> None:
    assert lock_name("base", "acme-01") == "wa-sessions:base:acme-01"
    long = lock_name("base", "x" * 50)
    assert len(long) <= LOCK_NAME_MAX and long.startswith("wa-sessions:")
    assert long != lock_name("base", "x" * 49 + "y")


def test_placeholders_for_ids_and_pairs() -> None:
    assert placeholders(3) == "%s, %s, %s"
    assert placeholders(2, 2) == "(%s, %s), (%s, %s)"


def test_outcomes_of_a_single_delete() -> None:
    assert outcomes([(b"k", b"d", "")], {}, 1, "L") == [None]
    [gone] = outcomes([(b"k", b"d", "")], {}, 0, "L")
    assert isinstance(gone, FileNotFoundError)
    assert outcomes([(b"k", b"d", "")], {b"k": b"e"}, 0, "L") == ["modified since the plan"]
    [lost] = outcomes([(b"k", b"d", "")], {b"k": b"d"}, 0, "L")
    assert isinstance(lost, OSError) and "lock L was lost" in str(lost)


def test_outcomes_keep_a_unit_whose_earlier_row_was_rewritten() -> None:
    planned = [(b"memory", b"m", "u"), (b"own", b"o", "u"), (b"pre", b"p", "")]
    after = {b"memory": b"rewritten", b"own": b"o"}
    assert outcomes(planned, after, 1, "L") == ["modified since the plan", HELD, None]


def test_a_batch_without_units_is_the_plain_compare_and_delete() -> None:
    statement, arguments = delete_statement("auth", "s", [(b"a", b"1", ""), (b"b", b"2", "b")], "L", 7)
    assert statement.startswith("DELETE FROM `auth` WHERE session = %s")
    assert arguments == ["s", b"a", "1", b"b", "2", "L", 7]


def test_a_batch_with_a_unit_guards_each_row_by_the_rows_before_it_in_its_unit() -> None:
    planned = [(b"m", b"1", "m"), (b"o1", b"2", "m"), (b"o2", b"3", "m")]
    statement, arguments = delete_statement("auth", "s", planned, "L", 7)
    assert statement.startswith("DELETE a FROM `auth` a LEFT JOIN `auth` m")
    assert statement.count("%s") == len(arguments)
    guards = [b"o1", b"m", b"o2", b"m", b"o2", b"o1"]
    pairs = [b"m", "1", b"o1", "2", b"o2", "3"]
    assert arguments == [b"m", b"m", b"o1", *guards, *pairs, "s", *pairs, "L", 7]


def test_reason_never_holds_the_password() -> None:
    denied = pymysql.err.OperationalError(1045, "Access denied for user 'baileys'@'x' (using password: YES)")
    assert reason_of(denied, ADDRESS) == "authentication failed for user 'baileys' (wrong user or password?)"
    echoed = pymysql.err.OperationalError(2003, "cannot connect with s3cr3t\n to db")
    assert reason_of(echoed, ADDRESS) == "cannot connect with *** to db"
    assert reason_of(pymysql.err.InterfaceError(0, ""), ADDRESS) == "connection lost"
