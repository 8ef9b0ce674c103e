"""Configuration (SPEC §8): command line > environment > YAML file > defaults.

One schema (the pydantic models below) drives validation, `config.example.yaml` and the docs.
Every error names its key, and all errors of one load are reported together.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.exceptions import SettingsError

from wa_sessions import layout
from wa_sessions.config_sources import (
    CONFIG_ENV,
    ENV_PREFIX,
    LegacyEnvironmentSource,
    Normalised,
    YamlSource,
    yaml_file,
)
from wa_sessions.errors import ConfigError
from wa_sessions.store_url import check_store_url, redact_store_url

__all__ = ["ConfigError", "Settings", "load_settings", "parse_bounded_duration"]
from wa_sessions.config_types import (
    DEFAULT_EMERGENCY_RULES,
    DEFAULT_RULES,
    Count,
    Duration,
    EmergencyRules,
    RegularRules,
    Strict,
    between,
    parse_bounded_duration,
)
from wa_sessions.durations import (
    COOLDOWN_BOUNDS,
    LOCK_WAIT_BOUNDS,
    NOTIFY_TIMEOUT_BOUNDS,
)

DEFAULT_ROOT = "/opt/ai-admin/baileys_sessions"


class Emergency(Strict):
    rules: EmergencyRules = Field(default_factory=lambda: dict(DEFAULT_EMERGENCY_RULES))


class Thresholds(Strict):
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


class Auto(Strict):
    cooldown: Annotated[Duration, between(*COOLDOWN_BOUNDS)] = 6 * 3600


class Locks(Strict):
    wait: Annotated[Duration, between(*LOCK_WAIT_BOUNDS)] = 0


class Notify(Strict):
    webhook_url: str | None = None
    timeout: Annotated[Duration, between(*NOTIFY_TIMEOUT_BOUNDS)] = 5


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
    store: str | None = None

    @field_validator("store")
    @classmethod
    def _store(cls, url: str | None) -> str | None:
        """A store URL this version can open (SPEC §10); the message never repeats a password."""
        return None if url is None else check_store_url(url)

    @property
    def shown_store(self) -> str | None:
        """The store URL without its password (None: the folders under root)."""
        return None if self.store is None else redact_store_url(self.store)

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
            Normalised(settings_cls, env_settings),
            LegacyEnvironmentSource(settings_cls),
            YamlSource(settings_cls, yaml_file.get()),
        )


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
    token = yaml_file.set(config_file)
    try:
        return Settings(**dict(cli_values or {}))
    except ValidationError as error:
        raise ConfigError(_format_errors(error)) from None
    except SettingsError as error:
        raise ConfigError(f"invalid configuration: {error}") from None
    finally:
        yaml_file.reset(token)
