"""Configuration (SPEC §8): command line > environment > YAML file > defaults.

One schema (the pydantic models below) drives validation, `config.example.yaml` and the docs.
Every error names its key, and all errors of one load are reported together.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.exceptions import SettingsError

from wa_sessions import layout
from wa_sessions.durations import (
    COOLDOWN_BOUNDS,
    LOCK_WAIT_BOUNDS,
    MAX_AGE_BOUNDS,
    NOTIFY_TIMEOUT_BOUNDS,
    bounds_message,
    format_duration,
    parse_duration,
)
from wa_sessions.rules import Rule

DEFAULT_ROOT = "/opt/ai-admin/baileys_sessions"
ENV_PREFIX = "WA_SESSIONS_"
CONFIG_ENV = "WA_SESSIONS_CONFIG"
LEGACY_ROOT_ENV = "BAILEYS_SESSIONS_PATH"
LEGACY_WEBHOOK_ENV = "NOTIFICATION_WEBHOOK"

#: keep_newest (0..) and thresholds (1..): counts of files in one folder, at most ten million.
MAX_COUNT = 10_000_000


class ConfigError(Exception):
    """The configuration is invalid; the message names every bad key."""


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


def _between(low: int, high: int) -> AfterValidator:
    """A validator that refuses seconds outside [low, high], naming the bounds."""

    def check(seconds: int) -> int:
        if not low <= seconds <= high:
            raise ValueError(bounds_message(low, high))
        return seconds

    return AfterValidator(check)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _RuleFields(_Strict):
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

    max_age: Annotated[Duration, _between(*MAX_AGE_BOUNDS)] | None = None


def _check_category(category: str) -> str:
    """A category that may have a rule; each bad one is its own error, named by its key."""
    if category in layout.PROTECTED:
        raise ValueError(f"{category!r} is protected and can have no rule")
    if category not in layout.CATEGORIES or category == layout.UNKNOWN:
        known = ", ".join(c for c in layout.CATEGORIES if c not in layout.PROTECTED | {layout.UNKNOWN})
        raise ValueError(f"unknown category {category!r} (one of: {known})")
    return category


def _category_key(key: object) -> str:
    """`sender_key` is read as `sender-key` (environment variable names cannot hold a dash)."""
    return str(key).lower().replace("_", "-")


def _normalise_rule_keys(values: dict[str, Any]) -> dict[str, Any]:
    """Spell the category keys of `rules` and `emergency.rules` one way in every source, so that
    pydantic-settings merges WA_SESSIONS_RULES__SENDER_KEY__* with YAML's `sender-key`."""
    values = dict(values)
    if isinstance(values.get("rules"), Mapping):
        values["rules"] = {_category_key(key): rule for key, rule in values["rules"].items()}
    emergency = values.get("emergency")
    if isinstance(emergency, Mapping) and isinstance(emergency.get("rules"), Mapping):
        values["emergency"] = {
            **emergency,
            "rules": {_category_key(k): r for k, r in emergency["rules"].items()},
        }
    return values


_DURATION_KEYS = frozenset({"max_age", "cooldown", "wait", "timeout"})


def _bare_numbers_as_text(value: Any, key: str = "") -> Any:
    """A duration written as a bare number (`max_age: 14`) becomes the text `14`, which the
    duration check rejects naming the key: seconds or days? the unit must be written."""
    if isinstance(value, Mapping):
        return {k: _bare_numbers_as_text(v, str(k)) for k, v in value.items()}
    if key in _DURATION_KEYS and isinstance(value, int | float):
        return str(value)
    return value


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
            given = {_category_key(key): rule for key, rule in value.items()}
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


class Emergency(_Strict):
    rules: EmergencyRules = Field(default_factory=lambda: dict(DEFAULT_EMERGENCY_RULES))


class Thresholds(_Strict):
    warning: Count = 150
    critical: Count = 170
    trigger: Count = 175
    emergency: Count = 180
    danger: Count = 185

    @model_validator(mode="after")
    def _ascending(self) -> Thresholds:
        values = [getattr(self, level) for level in layout.STATUS_LEVELS[1:]]
        if any(low >= high for low, high in itertools.pairwise(values)):
            shown = ", ".join(
                f"{lvl}={val}" for lvl, val in zip(layout.STATUS_LEVELS[1:], values, strict=True)
            )
            raise ValueError(f"must be strictly ascending, got {shown}")
        return self

    def as_mapping(self) -> dict[str, int]:
        return {level: getattr(self, level) for level in layout.STATUS_LEVELS[1:]}


class Auto(_Strict):
    cooldown: Annotated[Duration, _between(*COOLDOWN_BOUNDS)] = 6 * 3600


class Locks(_Strict):
    wait: Annotated[Duration, _between(*LOCK_WAIT_BOUNDS)] = 0


class Notify(_Strict):
    webhook_url: str | None = None
    timeout: Annotated[Duration, _between(*NOTIFY_TIMEOUT_BOUNDS)] = 5


class Settings(BaseSettings):
    """The effective configuration of one run."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        case_sensitive=False,
    )

    root: Path = Path(DEFAULT_ROOT)
    tenant_pattern: str = "company_*"
    state_dir: Path | None = None
    rules: RegularRules = Field(default_factory=lambda: dict(DEFAULT_RULES))
    emergency: Emergency = Field(default_factory=Emergency)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    auto: Auto = Field(default_factory=Auto)
    locks: Locks = Field(default_factory=Locks)
    notify: Notify = Field(default_factory=Notify)

    @field_validator("root", "state_dir", mode="before")
    @classmethod
    def _not_blank(cls, value: object, info: ValidationInfo) -> object:
        """An empty or blank path from any source is an error, never the current directory
        (`Path("")` is `.`); a null root too (a null state_dir means the default)."""
        if value is None and info.field_name == "root":
            raise ValueError("must not be empty")
        if isinstance(value, str | Path) and not str(value).strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("root", "state_dir")
    @classmethod
    def _no_nul(cls, path: Path | None) -> Path | None:
        if path is not None and "\x00" in str(path):
            raise ValueError("must not contain a NUL byte")
        return path

    @field_validator("tenant_pattern")
    @classmethod
    def _pattern(cls, pattern: str) -> str:
        if not pattern or "/" in pattern or pattern.startswith("."):
            raise ValueError("must be a non-empty glob without '/' that does not start with '.'")
        return pattern

    @field_validator("state_dir")
    @classmethod
    def _not_in_a_tenant(cls, state_dir: Path | None, info: ValidationInfo) -> Path | None:
        """A state dir inside a tenant folder (`<root>/<tenant>/...`, paths resolved) would put
        our files among Baileys' own; refused. (root and tenant_pattern are validated before.)"""
        root, pattern = info.data.get("root"), info.data.get("tenant_pattern")
        if state_dir is None or root is None or pattern is None:
            return state_dir
        try:
            inside = state_dir.resolve().relative_to(root.resolve()).parts
        except (ValueError, OSError, RuntimeError):  # not under root; a symlink loop
            return state_dir
        if len(inside) >= 2 and layout.is_tenant_name(inside[0], pattern):
            raise ValueError(f"must not lie inside the tenant folder {root / inside[0]}")
        return state_dir

    @property
    def effective_state_dir(self) -> Path:
        """`state_dir`, or `<root>/.wa-sessions` when unset."""
        return self.state_dir if self.state_dir is not None else self.root / ".wa-sessions"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            _Normalised(settings_cls, env_settings),
            _LegacyEnvironmentSource(settings_cls),
            _YamlSource(settings_cls, _yaml_file.get()),
        )


_yaml_file: ContextVar[Path | None] = ContextVar("wa_sessions_yaml_file", default=None)


class _Normalised(PydanticBaseSettingsSource):
    """Another source, with rule category keys spelled one way and bare-number durations as text."""

    def __init__(self, settings_cls: type[BaseSettings], inner: PydanticBaseSettingsSource):
        super().__init__(settings_cls)
        self.inner = inner

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.inner.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        return _bare_numbers_as_text(_normalise_rule_keys(self.inner()))  # type: ignore[no-any-return]


class _YamlSource(PydanticBaseSettingsSource):
    """The YAML file named by `--config` or WA_SESSIONS_CONFIG."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None):
        super().__init__(settings_cls)
        raw = read_yaml(path) if path is not None else {}
        self.values: dict[str, Any] = _bare_numbers_as_text(_normalise_rule_keys(raw))

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.values)


class _LegacyEnvironmentSource(PydanticBaseSettingsSource):
    """BAILEYS_SESSIONS_PATH (root) and NOTIFICATION_WEBHOOK (notify.webhook_url)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if LEGACY_ROOT_ENV in os.environ:  # set but empty is an error, as WA_SESSIONS_ROOT= is
            values["root"] = os.environ[LEGACY_ROOT_ENV]
        if os.environ.get(LEGACY_WEBHOOK_ENV):
            values["notify"] = {"webhook_url": os.environ[LEGACY_WEBHOOK_ENV]}
        return values


def read_yaml(path: Path) -> dict[str, Any]:
    """Given a YAML config path, return its mapping. Raise ConfigError naming the problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise ConfigError(f"cannot read config file {path}: {reason}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys, not {type(data).__name__}")
    return data


def _format_errors(error: ValidationError) -> str:
    messages = []
    bad_keys = {item["loc"][:-1] for item in error.errors() if item["loc"] and item["loc"][-1] == "[key]"}
    for item in error.errors():
        location = item["loc"]
        if location[-1:] != ("[key]",) and any(location[: len(bad)] == bad for bad in bad_keys):
            continue  # the key itself is refused; what it holds does not matter
        key = ".".join(str(part) for part in location if part != "[key]") or "(top level)"
        message = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        messages.append(f"{key}: {message.removeprefix('Value error, ')}")
    return "invalid configuration: " + "; ".join(messages)


def load_settings(config_file: Path | None = None, cli_values: Mapping[str, Any] | None = None) -> Settings:
    """Given a config file and command-line values, return the effective settings.

    The environment is read too (WA_SESSIONS_*, BAILEYS_SESSIONS_PATH, NOTIFICATION_WEBHOOK,
    and WA_SESSIONS_CONFIG when no file is given). Raise ConfigError naming every bad key.
    """
    if config_file is None and os.environ.get(CONFIG_ENV):
        config_file = Path(os.environ[CONFIG_ENV])
    token = _yaml_file.set(config_file)
    try:
        return Settings(**dict(cli_values or {}))
    except ValidationError as error:
        raise ConfigError(_format_errors(error)) from None
    except SettingsError as error:
        raise ConfigError(f"invalid configuration: {error}") from None
    finally:
        _yaml_file.reset(token)
