"""The configuration's value types (SPEC §8): durations within their bounds, counts, and the rule
tables (`rules`, `emergency.rules`) laid over their defaults, protected categories refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    TypeAdapter,
    model_validator,
)

from wa_sessions import layout
from wa_sessions.config_sources import (
    category_key,
)
from wa_sessions.durations import (
    MAX_AGE_BOUNDS,
    bounds_message,
    format_duration,
    parse_duration,
)
from wa_sessions.errors import ConfigError
from wa_sessions.rules import Rule

#: keep_newest (0..) and thresholds (1..): counts of files in one folder, at most ten million.
MAX_COUNT = 10_000_000


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


def _duration_from_config(value: object) -> int:
    """Durations from a config source are strings (bare numbers are made strings by the sources,
    so `max_age: 14` is an error, not 14 seconds); code may pass seconds as a non-negative int."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return parse_duration(value)


Duration = Annotated[
    int,
    BeforeValidator(_duration_from_config),
    PlainSerializer(format_duration, return_type=str),
]


def between(low: int, high: int) -> AfterValidator:
    """A validator that refuses seconds outside [low, high], naming the bounds."""

    def check(seconds: int) -> int:
        if not low <= seconds <= high:
            raise ValueError(bounds_message(low, high))
        return seconds

    return AfterValidator(check)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _RuleFields(Strict):
    """A rule as configured: `{max_age: DURATION}`, `{keep_newest: N}` or both."""

    max_age: Duration | None = None
    keep_newest: Annotated[int, Field(ge=0, le=MAX_COUNT)] | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> _RuleFields:
        if self.max_age is None and self.keep_newest is None:
            raise ValueError("a rule needs max_age, keep_newest or both")
        return self


Rules = dict[str, Rule]


class _ConfiguredRule(_RuleFields):
    """A rule as a configuration source writes it: its max_age within MAX_AGE_BOUNDS. (A Rule
    built in code is not bounded: `max_age=0` is how tests say "every file".)"""

    max_age: Annotated[Duration, between(*MAX_AGE_BOUNDS)] | None = None


def _check_category(category: str) -> str:
    """A category that may have a rule; each bad one is its own error, named by its key."""
    if category in layout.PROTECTED:
        raise ValueError(f"{category!r} is protected and can have no rule")
    if category not in layout.CATEGORIES or category == layout.UNKNOWN:
        known = ", ".join(c for c in layout.CATEGORIES if c not in layout.PROTECTED | {layout.UNKNOWN})
        raise ValueError(f"unknown category {category!r} (one of: {known})")
    return category


def _rule_input(rule: object) -> object:
    """A Rule object as the fields a config source would give (checked like them)."""
    if isinstance(rule, Rule):
        return {"max_age": rule.max_age, "keep_newest": rule.keep_newest}
    return rule


def _rules_over(defaults: Rules) -> Callable[[object], Rules]:
    """A validator of a rule table (`rules`, `emergency.rules`) that lays it over the defaults.

    Setting one category (say from WA_SESSIONS_RULES__SESSION__MAX_AGE) keeps the default rules
    of the others; a category set to null has no rule. `sender_key` is read as `sender-key`
    (environment variable names cannot hold a dash). Every rule is checked as a configured rule
    (bounded max_age; errors located at `<table>.<category>.<key>`) and returned as a plain Rule.
    """

    def merge(value: object) -> Rules:
        merged: object = value
        if isinstance(value, Mapping):
            given = {category_key(key): rule for key, rule in value.items()}
            table: dict[str, object] = dict(defaults)
            for category, rule in given.items():
                if rule is None and category in defaults:
                    table.pop(category, None)
                else:
                    table[category] = rule
            merged = {category: _rule_input(rule) for category, rule in table.items()}
        checked = _CONFIGURED_RULES.validate_python(merged)
        return {
            category: Rule(max_age=r.max_age, keep_newest=r.keep_newest) for category, r in checked.items()
        }

    return merge


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
_Category = Annotated[str, AfterValidator(_check_category)]
_CONFIGURED_RULES = TypeAdapter(dict[_Category, _ConfiguredRule])


def _as_rule(value: object) -> Rule:
    if not isinstance(value, Rule):
        raise ValueError("not a rule")
    return value


def _rule_fields(rule: Rule) -> dict[str, object]:
    """A rule as `config show` and the example config write it (durations as `14d`)."""
    max_age = None if rule.max_age is None else format_duration(rule.max_age)
    return {"max_age": max_age, "keep_newest": rule.keep_newest}


_RuleTable = dict[_Category, Annotated[Rule, PlainValidator(_as_rule), PlainSerializer(_rule_fields)]]
RegularRules = Annotated[_RuleTable, BeforeValidator(_rules_over(DEFAULT_RULES))]
EmergencyRules = Annotated[_RuleTable, BeforeValidator(_rules_over(DEFAULT_EMERGENCY_RULES))]
Count = Annotated[int, Field(ge=1, le=MAX_COUNT)]
