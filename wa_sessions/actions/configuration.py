"""`wa-sessions config show` and `config validate`: the effective configuration, and where each
value came from (`cli`, `env`, `yaml`, `default`), in the precedence of SPEC §8."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from wa_sessions.config import Settings, load_settings
from wa_sessions.config_sources import (
    CONFIG_ENV,
    ENV_PREFIX,
    LEGACY_ROOT_ENV,
    LEGACY_WEBHOOK_ENV,
    read_yaml,
)
from wa_sessions.deploy import path_problems
from wa_sessions.errors import ConfigError
from wa_sessions.notify import redact_url
from wa_sessions.results import ConfigValue, Result
from wa_sessions.store_url import redact_store_url
from wa_sessions.times import iso_datetime, utc_now

_RULE_TABLES = {("rules",), ("emergency", "rules")}
_SECRET_KEYS = {("notify", "webhook_url")}


def config_file_in_effect(config_file: Path | None) -> Path | None:
    """`--config`, else WA_SESSIONS_CONFIG, else none."""
    if config_file is not None:
        return config_file
    named = os.environ.get(CONFIG_ENV)
    return Path(named) if named else None


def _leaves(value: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            if item is None and path[:-1] in _RULE_TABLES:
                continue  # a rule without keep_newest (or max_age)
            yield from _leaves(item, (*path, str(key)))
    else:
        yield path, value


def _normal(part: str) -> str:
    return part.lower().replace("-", "_")


def _lookup(mapping: Any, path: tuple[str, ...]) -> bool:
    """Whether `path` (compared without case and with `-` as `_`) is set in a nested mapping."""
    for part in path:
        if not isinstance(mapping, Mapping):
            return False
        matches = [key for key in mapping if _normal(str(key)) == _normal(part)]
        if not matches:
            return False
        mapping = mapping[matches[0]]
    return True


def _from_environment(path: tuple[str, ...]) -> str | None:
    """The environment variable that sets this key, if any (nested `__` keys or a JSON object)."""
    for name, raw in os.environ.items():
        if not name.upper().startswith(ENV_PREFIX) or name.upper() == CONFIG_ENV:
            continue
        parts = tuple(_normal(part) for part in name[len(ENV_PREFIX) :].split("__"))
        wanted = tuple(_normal(part) for part in path)
        if parts == wanted:
            return name
        if wanted[: len(parts)] == parts:
            try:
                document = json.loads(raw)
            except ValueError:
                continue
            if _lookup(document, wanted[len(parts) :]):
                return name
    return None


def _source(path: tuple[str, ...], cli_values: Mapping[str, Any], yaml_values: Mapping[str, Any]) -> str:
    if _lookup(cli_values, path):
        return "cli"
    variable = _from_environment(path)
    if variable is not None:
        return f"env {variable.upper()}"
    if path == ("root",) and os.environ.get(LEGACY_ROOT_ENV):
        return f"env {LEGACY_ROOT_ENV}"
    if path == ("notify", "webhook_url") and os.environ.get(LEGACY_WEBHOOK_ENV):
        return f"env {LEGACY_WEBHOOK_ENV}"
    if _lookup(yaml_values, path):
        return "yaml"
    return "default"


def explain(settings: Settings, config_file: Path | None, cli_values: Mapping[str, Any]) -> list[ConfigValue]:
    """Given effective settings and what they were loaded from, return every leaf with its source."""
    effective = settings.as_json()
    effective["state_dir"] = str(settings.state_dir) if settings.state_dir is not None else None
    yaml_values = read_yaml(config_file) if config_file is not None else {}
    values = []
    for path, value in _leaves(effective, ()):
        shown = redact_url(value) if path in _SECRET_KEYS and isinstance(value, str) else value
        if path == ("store",) and isinstance(value, str):
            shown = redact_store_url(value)
        values.append(ConfigValue(".".join(path), shown, _source(path, cli_values, yaml_values)))
    return values


def run_config_show(config_file: Path | None, cli_values: Mapping[str, Any], command: str) -> Result:
    """Load the configuration (raise ConfigError naming every bad key) and explain it. For
    `config validate`, also raise ConfigError when `root` is not an existing directory or the
    state dir cannot be created (it is not created here)."""
    in_effect = config_file_in_effect(config_file)
    settings = load_settings(config_file, cli_values)
    if command == "config validate":
        problems = path_problems(settings.root, settings.effective_state_dir, settings.state_dir is None)
        if problems:
            raise ConfigError("invalid configuration: " + "; ".join(problems))
    return Result(
        command=command,
        root=str(settings.root),
        generated_at=iso_datetime(utc_now()),
        config_file=str(in_effect) if in_effect is not None else None,
        config_values=explain(settings, in_effect, cli_values),
    )
