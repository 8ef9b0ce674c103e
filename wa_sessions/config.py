"""Configuration (SPEC §8): command line > environment > YAML file > defaults.

One schema (the frozen dataclasses and the checks below) drives validation, `config show` and the
example config's test. Every error names its key, and all errors of one load are reported
together. Standard library only: pydantic and pydantic-settings cost ~0.15 s of start-up.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wa_sessions import layout
from wa_sessions.config_sources import CONFIG_ENV, FIELDS, merged_sources
from wa_sessions.config_types import (
    DEFAULT_EMERGENCY_RULES,
    DEFAULT_RULES,
    INVALID,
    Check,
    Errors,
    Location,
    Rules,
    checked,
    count,
    duration,
    nullable,
    parse_bounded_duration,
    path,
    rules_over,
    table,
    text,
)
from wa_sessions.durations import (
    COOLDOWN_BOUNDS,
    LOCK_WAIT_BOUNDS,
    NOTIFY_TIMEOUT_BOUNDS,
    format_duration,
)
from wa_sessions.errors import ConfigError
from wa_sessions.rules import Rule
from wa_sessions.store_url import check_store_url, redact_store_url

__all__ = ["DEFAULT_ROOT", "ConfigError", "Locks", "Settings", "load_settings", "parse_bounded_duration"]

DEFAULT_ROOT = "/opt/ai-admin/baileys_sessions"


@dataclass(frozen=True)
class Emergency:
    rules: Rules = field(default_factory=lambda: dict(DEFAULT_EMERGENCY_RULES))


@dataclass(frozen=True)
class Thresholds:
    warning: int = 150
    critical: int = 170
    trigger: int = 175
    emergency: int = 180
    danger: int = 185

    def as_mapping(self) -> dict[str, int]:
        return {level: getattr(self, level) for level in layout.STATUS_LEVELS[1:]}


@dataclass(frozen=True)
class Auto:
    cooldown: int = 6 * 3600


@dataclass(frozen=True)
class Locks:
    wait: int = 0


@dataclass(frozen=True)
class Notify:
    webhook_url: str | None = None
    timeout: int = 5


def _rule_fields(rule: Rule) -> dict[str, object]:
    """A rule as `config show` writes it (durations as `14d`)."""
    max_age = None if rule.max_age is None else format_duration(rule.max_age)
    return {"max_age": max_age, "keep_newest": rule.keep_newest}


@dataclass(frozen=True)
class Settings:
    """The effective configuration of one run."""

    root: Path = Path(DEFAULT_ROOT)
    tenant_pattern: str = "company_*"
    state_dir: Path | None = None
    rules: Rules = field(default_factory=lambda: dict(DEFAULT_RULES))
    emergency: Emergency = field(default_factory=Emergency)
    thresholds: Thresholds = field(default_factory=Thresholds)
    auto: Auto = field(default_factory=Auto)
    locks: Locks = field(default_factory=Locks)
    notify: Notify = field(default_factory=Notify)
    store: str | None = None

    @property
    def shown_store(self) -> str | None:
        """The store URL without its password (None: the folders under root)."""
        return None if self.store is None else redact_store_url(self.store)

    @property
    def effective_state_dir(self) -> Path:
        """`state_dir`, or `<root>/.wa-sessions` when unset."""
        return self.state_dir if self.state_dir is not None else self.root / ".wa-sessions"

    def as_json(self) -> dict[str, Any]:
        """Every key as JSON values, durations written `14d` (`config show`, the example's test)."""
        return {
            "root": str(self.root),
            "tenant_pattern": self.tenant_pattern,
            "state_dir": None if self.state_dir is None else str(self.state_dir),
            "rules": {category: _rule_fields(rule) for category, rule in self.rules.items()},
            "emergency": {
                "rules": {category: _rule_fields(rule) for category, rule in self.emergency.rules.items()}
            },
            "thresholds": self.thresholds.as_mapping(),
            "auto": {"cooldown": format_duration(self.auto.cooldown)},
            "locks": {"wait": format_duration(self.locks.wait)},
            "notify": {
                "webhook_url": self.notify.webhook_url,
                "timeout": format_duration(self.notify.timeout),
            },
            "store": self.store,
        }


def _model(kind: type[Any], keys: dict[str, Check], after: Any = None) -> Check:
    """A check of a table that builds `kind` from its keys (defaults for the missing ones); an
    instance of `kind` is taken as it is; `after` checks the whole once every key is valid."""

    def check(value: object, location: Location, errors: Errors) -> Any:
        if isinstance(value, kind):
            return value
        before = len(errors)
        fields = table(value, location, errors, keys, kind.__name__)
        if fields is None or len(errors) > before:
            return INVALID
        built = kind(**fields)
        if after is not None:
            try:
                after(built)
            except ValueError as error:
                errors.append((location, str(error)))
                return INVALID
        return built

    return check


def _ascending(thresholds: Thresholds) -> None:
    values = [getattr(thresholds, level) for level in layout.STATUS_LEVELS[1:]]
    if any(low >= high for low, high in itertools.pairwise(values)):
        shown = ", ".join(f"{lvl}={val}" for lvl, val in zip(layout.STATUS_LEVELS[1:], values, strict=True))
        raise ValueError(f"must be strictly ascending, got {shown}")


def _a_path(value: object, location: Location, errors: Errors) -> Path:
    """An empty or blank path from any source is an error, never the current directory
    (`Path("")` is `.`); so is a path holding a NUL byte."""
    if isinstance(value, str | Path) and not str(value).strip():
        errors.append((location, "must not be empty"))
        return INVALID  # type: ignore[no-any-return]
    checked_path: Path = checked(path)(value, location, errors)
    if checked_path is not INVALID and "\x00" in str(checked_path):
        errors.append((location, "must not contain a NUL byte"))
        return INVALID  # type: ignore[no-any-return]
    return checked_path


def _root(value: object, location: Location, errors: Errors) -> Path:
    if value is None:  # a null root too is an error (a null state_dir means the default)
        errors.append((location, "must not be empty"))
        return INVALID  # type: ignore[no-any-return]
    return _a_path(value, location, errors)


def _pattern(value: object) -> str:
    pattern = text(value)
    if not pattern or "/" in pattern or pattern.startswith("."):
        raise ValueError("must be a non-empty glob without '/' that does not start with '.'")
    return pattern


def _store(value: object) -> str:
    """A store URL this version can open (SPEC §10); the message never repeats a password."""
    return check_store_url(text(value))


_CHECKS: dict[str, Check] = {
    "root": _root,
    "tenant_pattern": checked(_pattern),
    "state_dir": nullable(_a_path),
    "rules": rules_over(DEFAULT_RULES),
    "emergency": _model(Emergency, {"rules": rules_over(DEFAULT_EMERGENCY_RULES)}),
    "thresholds": _model(Thresholds, {level: count(1) for level in layout.STATUS_LEVELS[1:]}, _ascending),
    "auto": _model(Auto, {"cooldown": duration(COOLDOWN_BOUNDS)}),
    "locks": _model(Locks, {"wait": duration(LOCK_WAIT_BOUNDS)}),
    "notify": _model(
        Notify, {"webhook_url": nullable(checked(text)), "timeout": duration(NOTIFY_TIMEOUT_BOUNDS)}
    ),
    "store": nullable(checked(_store)),
}
assert tuple(_CHECKS) == FIELDS
_DEFAULTS = {"root": Settings.root, "tenant_pattern": Settings.tenant_pattern}


def _not_in_a_tenant(values: Mapping[str, Any], errors: Errors) -> None:
    """A state dir inside a tenant folder (`<root>/<tenant>/...`, paths resolved) would put our
    files among Baileys' own; refused. (Only checked when root and tenant_pattern are valid.)"""
    state_dir, root, pattern = values.get("state_dir"), values.get("root"), values.get("tenant_pattern")
    if not isinstance(state_dir, Path) or not isinstance(root, Path) or not isinstance(pattern, str):
        return
    try:
        inside = state_dir.resolve().relative_to(root.resolve()).parts
    except (ValueError, OSError, RuntimeError):  # not under root; a symlink loop
        return
    if len(inside) >= 2 and layout.is_tenant_name(inside[0], pattern):
        errors.append((("state_dir",), f"must not lie inside the tenant folder {root / inside[0]}"))


def settings_of(values: Mapping[str, Any], errors: Errors) -> Settings | None:
    """Given the merged sources' values, return the Settings (defaults for the keys not given),
    or None after recording every error in `errors` (in the order of the keys)."""
    checked_values: dict[str, Any] = {}
    for key, check in _CHECKS.items():
        if key in values:
            checked_values[key] = check(values[key], (key,), errors)
        if key == "state_dir" and checked_values.get(key) not in (None, INVALID):
            _not_in_a_tenant({**_DEFAULTS, **checked_values}, errors)
    for key in values:
        if not isinstance(key, str):
            errors.append(((key,), "Keys should be strings"))
        elif key not in _CHECKS:
            errors.append(((key,), "unknown key"))
    return None if errors else Settings(**checked_values)


def _message(source_errors: list[str], errors: Errors) -> str:
    shown = [
        f"{'.'.join(str(part) for part in location) or '(top level)'}: {message}"
        for location, message in errors
    ]
    return "invalid configuration: " + "; ".join(source_errors + shown)


def load_settings(config_file: Path | None = None, cli_values: Mapping[str, Any] | None = None) -> Settings:
    """Given a config file and command-line values, return the effective settings.

    The environment is read too (WA_SESSIONS_*, BAILEYS_SESSIONS_PATH, NOTIFICATION_WEBHOOK,
    and WA_SESSIONS_CONFIG when no file is given). Raise ConfigError naming every bad key.
    """
    if config_file is None and os.environ.get(CONFIG_ENV):
        config_file = Path(os.environ[CONFIG_ENV])
    source_errors: list[str] = []
    values = merged_sources(config_file, cli_values or {}, source_errors)
    errors: Errors = []
    settings = settings_of(values, errors)
    if settings is None or source_errors:
        raise ConfigError(_message(source_errors, errors))
    return settings
