"""Where the configuration comes from (SPEC §8): the YAML file, the environment (WA_SESSIONS_*,
and the legacy BAILEYS_SESSIONS_PATH and NOTIFICATION_WEBHOOK) and the command line, each
normalised the same way (rule category keys spelled one way, bare-number durations as text) and
deep-merged in precedence order before config.py checks the result. Standard library only.

The environment is read as pydantic-settings read it (this module replaces it, for start-up
time): names without case, nested keys with `__`; a value for a table (`WA_SESSIONS_THRESHOLDS`)
is JSON; below `rules`, and for a whole rule, a value is JSON when it parses as JSON.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wa_sessions.errors import ConfigError

ENV_PREFIX = "WA_SESSIONS_"
CONFIG_ENV = "WA_SESSIONS_CONFIG"
LEGACY_ROOT_ENV = "BAILEYS_SESSIONS_PATH"
LEGACY_WEBHOOK_ENV = "NOTIFICATION_WEBHOOK"
_DELIMITER = "__"

#: The settings' keys, in the order they are checked and shown.
FIELDS = (
    "root",
    "tenant_pattern",
    "state_dir",
    "rules",
    "emergency",
    "thresholds",
    "auto",
    "locks",
    "notify",
    "store",
)
#: The keys that hold a table: their environment value is JSON, and they take nested names.
_TABLES = frozenset({"rules", "emergency", "thresholds", "auto", "locks", "notify"})
#: The keys of the fixed tables (a rule table takes any category).
_TABLE_KEYS = {
    "emergency": ("rules",),
    "thresholds": ("warning", "critical", "trigger", "emergency", "danger"),
    "auto": ("cooldown",),
    "locks": ("wait",),
    "notify": ("webhook_url", "timeout"),
}


def category_key(key: object) -> str:
    """`sender_key` is read as `sender-key` (environment variable names cannot hold a dash)."""
    return str(key).lower().replace("_", "-")


def normalise_rule_keys(values: dict[str, Any]) -> dict[str, Any]:
    """Spell the category keys of `rules` and `emergency.rules` one way in every source, so that
    WA_SESSIONS_RULES__SENDER_KEY__* merges with YAML's `sender-key`."""
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


def normalised(values: dict[str, Any]) -> dict[str, Any]:
    """A source's values with category keys spelled one way and bare-number durations as text."""
    return bare_numbers_as_text(normalise_rule_keys(values))  # type: ignore[no-any-return]


def deep_update(base: dict[Any, Any], *updates: Mapping[Any, Any]) -> dict[Any, Any]:
    """`base` with each of `updates` laid over it in turn, nested mappings merged key by key."""
    merged = dict(base)
    for update in updates:
        for key, value in update.items():
            if key in merged and isinstance(merged[key], dict) and isinstance(value, dict):
                merged[key] = deep_update(merged[key], value)
            else:
                merged[key] = value
    return merged


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _variable(field: str, keys: list[str]) -> str:
    return _DELIMITER.join([(ENV_PREFIX + field).upper(), *(key.upper() for key in keys)])


def _nested_value(field: str, keys: list[str], last: str, text: str, errors: list[str]) -> tuple[bool, Any]:
    """A nested variable's value: JSON when it parses for anything below `rules` and for a whole
    rule of `emergency.rules`, JSON or an error for `emergency.rules` itself, text otherwise.
    Return (False, None) after recording an error."""
    if not text:
        return True, text
    if field == "rules" or (field == "emergency" and keys == ["rules"]):
        return True, _json_or_text(text)
    if field == "emergency" and not keys and last == "rules":
        try:
            return True, json.loads(text)
        except ValueError:
            errors.append(f"emergency.rules: {_variable(field, [last])} is not valid JSON")
            return False, None
    return True, text


def _nested(field: str, variables: Mapping[str, str], errors: list[str]) -> dict[str, Any]:
    """The WA_SESSIONS_<FIELD>__A__B variables of one table as a nested mapping {a: {b: value}}."""
    prefix = f"{ENV_PREFIX.lower()}{field}{_DELIMITER}"
    result: dict[str, Any] = {}
    for name, text in variables.items():
        if not name.startswith(prefix):
            continue
        *keys, last = name[len(prefix) :].split(_DELIMITER)
        read, value = _nested_value(field, keys, last, text, errors)
        target: Any = result
        for key in keys:
            if isinstance(target, dict):
                target = target.setdefault(key, {})
        if read and isinstance(target, dict):
            target[last] = value
    return result


def environment_values(environ: Mapping[str, str], errors: list[str]) -> dict[str, Any]:
    """The settings the WA_SESSIONS_* variables give (names without case; unknown top-level names
    ignored). A table's value that is not JSON is recorded in `errors` and ignored."""
    variables = {name.lower(): text for name, text in environ.items()}
    values: dict[str, Any] = {}
    for field in FIELDS:
        text = variables.get(f"{ENV_PREFIX.lower()}{field}")
        if field not in _TABLES:
            if text is not None:
                values[field] = text
            continue
        if text is None:
            nested = _nested(field, variables, errors)
            if nested:
                values[field] = nested
            continue
        try:
            value = json.loads(text)
        except ValueError:
            errors.append(f"{field}: {_variable(field, [])} is not valid JSON")
            continue
        # The nested names count only under a JSON object (`null` is as if unset).
        if isinstance(value, dict):
            values[field] = deep_update(value, _nested(field, variables, errors))
        elif value is not None:
            values[field] = value
    return normalised({field: _known_case(field, value) for field, value in values.items()})


def _known_case(field: str, value: Any) -> Any:
    """A fixed table's keys from the environment matched without case (`{"Warning": 1}`)."""
    if field not in _TABLE_KEYS or not isinstance(value, dict):
        return value
    known = {key.lower(): key for key in _TABLE_KEYS[field]}
    return {known.get(str(key).lower(), key): item for key, item in value.items()}


def legacy_values(environ: Mapping[str, str]) -> dict[str, Any]:
    """BAILEYS_SESSIONS_PATH (root) and NOTIFICATION_WEBHOOK (notify.webhook_url)."""
    values: dict[str, Any] = {}
    if LEGACY_ROOT_ENV in environ:  # set but empty is an error, as WA_SESSIONS_ROOT= is
        values["root"] = environ[LEGACY_ROOT_ENV]
    if environ.get(LEGACY_WEBHOOK_ENV):
        values["notify"] = {"webhook_url": environ[LEGACY_WEBHOOK_ENV]}
    return values


def merged_sources(
    config_file: Path | None, cli_values: Mapping[str, Any], errors: list[str]
) -> dict[str, Any]:
    """Command line > environment > legacy variables > YAML file, deep-merged (defaults are laid
    under this by config.py). Raise ConfigError when the YAML file cannot be read.

    Each source is laid under what the sources above it give together, as pydantic-settings did:
    a table in the YAML file keeps its other keys under a table from the command line even when
    the environment gave no table for it (`WA_SESSIONS_RULES=190`, itself overridden)."""
    yaml_values = normalised(read_yaml(config_file)) if config_file is not None else {}
    sources = (
        dict(cli_values),
        environment_values(os.environ, errors),
        legacy_values(os.environ),
        yaml_values,
    )
    merged: dict[str, Any] = {}
    for values in sources:
        merged = deep_update(values, merged)
    return merged


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
    # A top-level key that is not text (`1: x`, `null: x`) is named like any unknown key.
    return {str(key): value for key, value in data.items()}
