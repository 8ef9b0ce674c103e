"""The configuration's value types (SPEC §8): counts, text, paths, durations within their bounds,
and the rule tables (`rules`, `emergency.rules`) laid over their defaults, protected categories
refused. Standard library only (start-up time): each check takes a value, its location and the
list of errors of the load, and returns the checked value or INVALID after recording why.

A value is accepted as pydantic's lax mode accepted it before (a count may be `"5"` or `5.0`), and
the messages of type errors are pydantic's, so that what users see did not change.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from wa_sessions import layout
from wa_sessions.config_sources import category_key
from wa_sessions.durations import MAX_AGE_BOUNDS, bounds_message, parse_duration
from wa_sessions.errors import ConfigError
from wa_sessions.rules import Rule

#: keep_newest (0..) and thresholds (1..): counts of files in one folder, at most ten million.
MAX_COUNT = 10_000_000

Location = tuple[object, ...]
Errors = list[tuple[Location, str]]
Check = Callable[[object, Location, Errors], Any]


class _Invalid:
    def __repr__(self) -> str:
        return "INVALID"


#: What a check returns after recording an error.
INVALID: Final[Any] = _Invalid()


def parse_bounded_duration(text: object, key: str, low: int, high: int) -> int:
    """Given a duration (`10m`) and its bounds in seconds (both allowed), return its seconds.

    Raise ConfigError naming `key` (`--older-than: must be between 1m and 3650d`) when it is not
    a duration or lies outside the bounds.
    """
    try:
        seconds = parse_duration(text)
    except ValueError as error:
        raise ConfigError(f"{key}: {error}") from None
    if not low <= seconds <= high:
        raise ConfigError(f"{key}: {bounds_message(low, high)}")
    return seconds


def checked(check: Callable[[Any], Any]) -> Check:
    """A check of one value that raises ValueError with its message, as a Check."""

    def run(value: object, location: Location, errors: Errors) -> Any:
        try:
            return check(value)
        except ValueError as error:
            errors.append((location, str(error)))
            return INVALID

    return run


def nullable(check: Check) -> Check:
    """`check`, with None accepted as None."""
    return lambda value, location, errors: None if value is None else check(value, location, errors)


_WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_INTEGER = re.compile(r"[+-]?[0-9](?:_?[0-9])*(?:\.0+)?")
_INVALID_INTEGER = "Input should be a valid integer"
_TOO_BIG = "Unable to parse input string as an integer, exceeded maximum size"


def _integer(value: object) -> int:
    """An int as pydantic's lax mode read one: an int (a bool too), an integral float, text of
    digits (surrounding white space, a sign, `_` between digits and `.0` allowed)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        text = value.strip(_WHITESPACE)
        if not _INTEGER.fullmatch(text):
            raise ValueError(f"{_INVALID_INTEGER}, unable to parse string as an integer")
        if len(text) > 4300:
            raise ValueError(_TOO_BIG)
        return int(text.partition(".")[0])
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("Input should be a finite number")
        if value != int(value):
            raise ValueError(f"{_INVALID_INTEGER}, got a number with a fractional part")
        if abs(value) >= 2**63:
            raise ValueError(_TOO_BIG)
        return int(value)
    raise ValueError(_INVALID_INTEGER)


def count(low: int) -> Check:
    """A count from `low` to MAX_COUNT."""

    def check(value: object) -> int:
        number = _integer(value)
        if number < low:
            raise ValueError(f"Input should be greater than or equal to {low}")
        if number > MAX_COUNT:
            raise ValueError(f"Input should be less than or equal to {MAX_COUNT}")
        return number

    return checked(check)


def text(value: object) -> str:
    """Text (bytes as UTF-8)."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(
                "Input should be a valid string, unable to parse raw data as a unicode string"
            ) from None
    if not isinstance(value, str):
        raise ValueError("Input should be a valid string")
    return value


def path(value: object) -> Path:
    """A path from text or a path."""
    if isinstance(value, Path):
        return value
    if not isinstance(value, str):
        raise ValueError("Input is not a valid path for <class 'pathlib.Path'>")
    return Path(value)


def duration(bounds: tuple[int, int] | None) -> Check:
    """A duration within `bounds` (both allowed). Durations from a config source are text (bare
    numbers are made text by the sources, so `max_age: 14` is an error, not 14 seconds); code may
    pass seconds as a non-negative int."""

    def check(value: object) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            seconds = value
        else:
            seconds = parse_duration(value)
        if bounds is not None and not bounds[0] <= seconds <= bounds[1]:
            raise ValueError(bounds_message(*bounds))
        return seconds

    return checked(check)


def table(
    value: object, location: Location, errors: Errors, keys: Mapping[str, Check], name: str
) -> dict[str, Any] | None:
    """Given a mapping of `keys` (instance of `name` in messages), return the checked values of
    those present (unknown keys and bad values recorded), or None when it is not a mapping."""
    if not isinstance(value, Mapping):
        errors.append((location, f"Input should be a valid dictionary or instance of {name}"))
        return None
    result = {key: check(value[key], (*location, key), errors) for key, check in keys.items() if key in value}
    for key in value:
        if not isinstance(key, str):
            errors.append(((*location, key), "Keys should be strings"))
        elif key not in keys:
            errors.append(((*location, key), "unknown key"))
    return result


_MAX_AGE = nullable(duration(MAX_AGE_BOUNDS))
_RULE_KEYS: dict[str, Check] = {"max_age": _MAX_AGE, "keep_newest": nullable(count(0))}


def configured_rule(value: object, location: Location, errors: Errors) -> Rule:
    """A rule as a configuration source writes it: `{max_age: DURATION}` (within MAX_AGE_BOUNDS),
    `{keep_newest: N}` or both. (A Rule built in code is not bounded: `max_age=0` is how tests
    say "every file".)"""
    before = len(errors)
    fields = table(value, location, errors, _RULE_KEYS, "_ConfiguredRule")
    if fields is None or len(errors) > before:
        return INVALID  # type: ignore[no-any-return]
    rule = Rule(max_age=fields.get("max_age"), keep_newest=fields.get("keep_newest"))
    if rule.max_age is None and rule.keep_newest is None:
        errors.append((location, "a rule needs max_age, keep_newest or both"))
        return INVALID  # type: ignore[no-any-return]
    return rule


def _check_category(category: str) -> None:
    """A category that may have a rule; each bad one is its own error, named by its key."""
    if category in layout.PROTECTED:
        raise ValueError(f"{category!r} is protected and can have no rule")
    if category not in layout.CATEGORIES or category == layout.UNKNOWN:
        known = ", ".join(c for c in layout.CATEGORIES if c not in layout.NEVER_PLANNED)
        raise ValueError(f"unknown category {category!r} (one of: {known})")


def _rule_input(rule: object) -> object:
    """A Rule object as the fields a config source would give (checked like them)."""
    if isinstance(rule, Rule):
        return {"max_age": rule.max_age, "keep_newest": rule.keep_newest}
    return rule


Rules = dict[str, Rule]


def rules_over(defaults: Rules) -> Check:
    """A check of a rule table (`rules`, `emergency.rules`) that lays it over the defaults.

    Setting one category (say from WA_SESSIONS_RULES__SESSION__MAX_AGE) keeps the default rules
    of the others; a category set to null has no rule. `sender_key` is read as `sender-key`.
    Every rule is checked as a configured rule (bounded max_age; errors located at
    `<table>.<category>.<key>`); a refused category's rule is not looked at.
    """

    def check(value: object, location: Location, errors: Errors) -> Rules:
        if not isinstance(value, Mapping):
            errors.append((location, "Input should be a valid dictionary"))
            return INVALID  # type: ignore[no-any-return]
        table: dict[str, object] = dict(defaults)
        for category, rule in {category_key(key): rule for key, rule in value.items()}.items():
            if rule is None and category in defaults:
                table.pop(category, None)
            else:
                table[category] = rule
        before = len(errors)
        rules: Rules = {}
        for category, rule in table.items():
            try:
                _check_category(category)
            except ValueError as error:
                errors.append(((*location, category), str(error)))
                continue
            rules[category] = configured_rule(_rule_input(rule), (*location, category), errors)
        return rules if len(errors) == before else INVALID

    return check


DEFAULT_RULES: Rules = {
    "session": Rule(max_age=14 * 86400),
    "sender-key": Rule(max_age=3 * 86400),
    "pre-key": Rule(keep_newest=50),
}
DEFAULT_EMERGENCY_RULES: Rules = {
    "session": Rule(max_age=3 * 86400),
    "sender-key": Rule(max_age=86400),
    "pre-key": Rule(keep_newest=20),
}
