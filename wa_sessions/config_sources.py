"""Where the configuration comes from (SPEC §8): the YAML file, the environment (WA_SESSIONS_*,
and the legacy BAILEYS_SESSIONS_PATH and NOTIFICATION_WEBHOOK), each normalised the same way
(rule category keys spelled one way, bare-number durations as text) before config.py checks them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from wa_sessions.errors import ConfigError

ENV_PREFIX = "WA_SESSIONS_"
CONFIG_ENV = "WA_SESSIONS_CONFIG"
LEGACY_ROOT_ENV = "BAILEYS_SESSIONS_PATH"
LEGACY_WEBHOOK_ENV = "NOTIFICATION_WEBHOOK"


def category_key(key: object) -> str:
    """`sender_key` is read as `sender-key` (environment variable names cannot hold a dash)."""
    return str(key).lower().replace("_", "-")


def normalise_rule_keys(values: dict[str, Any]) -> dict[str, Any]:
    """Spell the category keys of `rules` and `emergency.rules` one way in every source, so that
    pydantic-settings merges WA_SESSIONS_RULES__SENDER_KEY__* with YAML's `sender-key`."""
    values = dict(values)
    if isinstance(values.get("rules"), Mapping):
        values["rules"] = {category_key(key): rule for key, rule in values["rules"].items()}
    emergency = values.get("emergency")
    if isinstance(emergency, Mapping) and isinstance(emergency.get("rules"), Mapping):
        values["emergency"] = {
            **emergency,
            "rules": {category_key(k): r for k, r in emergency["rules"].items()},
        }
    return values


_DURATION_KEYS = frozenset({"max_age", "cooldown", "wait", "timeout"})


def bare_numbers_as_text(value: Any, key: str = "") -> Any:
    """A duration written as a bare number (`max_age: 14`) becomes the text `14`, which the
    duration check rejects naming the key: seconds or days? the unit must be written."""
    if isinstance(value, Mapping):
        return {k: bare_numbers_as_text(v, str(k)) for k, v in value.items()}
    if key in _DURATION_KEYS and isinstance(value, int | float):
        return str(value)
    return value


yaml_file: ContextVar[Path | None] = ContextVar("wa_sessions_yaml_file", default=None)


class Normalised(PydanticBaseSettingsSource):
    """Another source, with rule category keys spelled one way and bare-number durations as text."""

    def __init__(self, settings_cls: type[BaseSettings], inner: PydanticBaseSettingsSource):
        super().__init__(settings_cls)
        self.inner = inner

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.inner.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        return bare_numbers_as_text(normalise_rule_keys(self.inner()))  # type: ignore[no-any-return]


class YamlSource(PydanticBaseSettingsSource):
    """The YAML file named by `--config` or WA_SESSIONS_CONFIG."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None):
        super().__init__(settings_cls)
        raw = read_yaml(path) if path is not None else {}
        self.values: dict[str, Any] = bare_numbers_as_text(normalise_rule_keys(raw))

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.values)


class LegacyEnvironmentSource(PydanticBaseSettingsSource):
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
    import yaml  # here: a run without a config file does not load the YAML parser (start-up)

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
    # A top-level key that is not text (`1: x`, `null: x`) is named like any unknown key, never
    # passed on as a keyword (a TypeError).
    return {str(key): value for key, value in data.items()}
