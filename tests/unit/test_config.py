"""config.py: defaults, YAML, environment, command line, durations and errors (SPEC §8)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from wa_sessions.config import ConfigError, Settings, load_settings
from wa_sessions.durations import format_duration, parse_duration
from wa_sessions.rules import Rule

DAY = 86400
REPOSITORY = Path(__file__).resolve().parents[2]

# SPEC §8, written out: the defaults every test below departs from.
SPEC_DEFAULTS: dict[str, Any] = {
    "root": "/opt/ai-admin/baileys_sessions",
    "tenant_pattern": "company_*",
    "state_dir": None,
    "rules": {
        "session": {"max_age": "14d", "keep_newest": None},
        "sender-key": {"max_age": "3d", "keep_newest": None},
        "pre-key": {"max_age": None, "keep_newest": 50},
    },
    "emergency": {
        "rules": {
            "session": {"max_age": "3d", "keep_newest": None},
            "sender-key": {"max_age": "1d", "keep_newest": None},
            "pre-key": {"max_age": None, "keep_newest": 20},
        }
    },
    "thresholds": {"warning": 150, "critical": 170, "trigger": 175, "emergency": 180, "danger": 185},
    "auto": {"cooldown": "6h"},
    "locks": {"wait": "0s"},
    "notify": {"webhook_url": None, "timeout": "5s"},
    "store": None,
}


@pytest.fixture(autouse=True)
def in_tmp_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test runs in its own empty folder (no wa-sessions.yaml of the caller's); the caller's
    WA_SESSIONS_* variables are removed by tests/conftest.py."""
    monkeypatch.chdir(tmp_path)


WriteYaml = Callable[[str], Path]


@pytest.fixture
def write_yaml(tmp_path: Path) -> WriteYaml:
    def write(text: str) -> Path:
        path = tmp_path / "wa-sessions.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


def dumped(settings: Settings) -> dict[str, Any]:
    return settings.as_json()


def config_error(config_file: Path | None = None, cli_values: dict[str, Any] | None = None) -> str:
    with pytest.raises(ConfigError) as raised:
        load_settings(config_file, cli_values)
    return str(raised.value)


# --- defaults -----------------------------------------------------------------------------------


def test_defaults_are_those_of_the_spec() -> None:
    assert dumped(load_settings()) == SPEC_DEFAULTS


def test_default_state_dir_is_under_root() -> None:
    settings = load_settings(cli_values={"root": "/srv/sessions"})
    assert settings.state_dir is None
    assert settings.effective_state_dir == Path("/srv/sessions/.wa-sessions")


def test_config_example_yaml_documents_exactly_the_defaults() -> None:
    assert dumped(load_settings(REPOSITORY / "config.example.yaml")) == SPEC_DEFAULTS


def test_default_thresholds_as_mapping_lists_every_level_above_healthy() -> None:
    assert load_settings().thresholds.as_mapping() == SPEC_DEFAULTS["thresholds"]


# --- YAML ----------------------------------------------------------------------------------------


def test_yaml_file_sets_every_kind_of_key(write_yaml: WriteYaml) -> None:
    path = write_yaml(
        """
root: /srv/sessions
tenant_pattern: "*"
state_dir: /var/lib/wa-sessions
rules:
  session: {max_age: 7d}
thresholds: {warning: 100, critical: 110, trigger: 120, emergency: 130, danger: 140}
auto: {cooldown: 30m}
locks: {wait: 10s}
notify: {webhook_url: "http://127.0.0.1:9/hook", timeout: 2s}
"""
    )
    settings = load_settings(path)
    assert settings.root == Path("/srv/sessions")
    assert settings.tenant_pattern == "*"
    assert settings.effective_state_dir == Path("/var/lib/wa-sessions")
    assert settings.rules["session"] == Rule(max_age=7 * DAY)
    assert settings.thresholds.as_mapping() == {
        "warning": 100,
        "critical": 110,
        "trigger": 120,
        "emergency": 130,
        "danger": 140,
    }
    assert settings.auto.cooldown == 1800
    assert settings.locks.wait == 10
    assert settings.notify.webhook_url == "http://127.0.0.1:9/hook"
    assert settings.notify.timeout == 2


def test_yaml_rule_for_one_category_keeps_the_default_rules_of_the_others(write_yaml: WriteYaml) -> None:
    settings = load_settings(write_yaml("rules: {session: {max_age: 7d}}"))
    assert settings.rules == {
        "session": Rule(max_age=7 * DAY),
        "sender-key": Rule(max_age=3 * DAY),
        "pre-key": Rule(keep_newest=50),
    }


def test_yaml_null_rule_drops_the_category_rule(write_yaml: WriteYaml) -> None:
    settings = load_settings(write_yaml("rules: {session: null}\nemergency: {rules: {pre-key: null}}"))
    assert "session" not in settings.rules
    assert "pre-key" not in settings.emergency.rules
    assert settings.emergency.rules["session"] == Rule(max_age=3 * DAY)


def test_yaml_rule_may_combine_max_age_and_keep_newest(write_yaml: WriteYaml) -> None:
    settings = load_settings(write_yaml("rules: {identity-key: {max_age: 2w, keep_newest: 100}}"))
    assert settings.rules["identity-key"] == Rule(max_age=14 * DAY, keep_newest=100)


def test_yaml_accepts_underscores_for_dashes_in_category_names(write_yaml: WriteYaml) -> None:
    settings = load_settings(write_yaml("rules: {sender_key: {max_age: 2d}}"))
    assert settings.rules["sender-key"] == Rule(max_age=2 * DAY)


def test_empty_yaml_file_gives_the_defaults(write_yaml: WriteYaml) -> None:
    assert dumped(load_settings(write_yaml("# nothing here\n"))) == SPEC_DEFAULTS


def test_config_file_may_be_named_by_wa_sessions_config(
    write_yaml: WriteYaml, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WA_SESSIONS_CONFIG", str(write_yaml("root: /from-env-config")))
    assert load_settings().root == Path("/from-env-config")


def test_config_file_argument_wins_over_wa_sessions_config(
    write_yaml: WriteYaml, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other.yaml"
    other.write_text("root: /from-env-config\n")
    monkeypatch.setenv("WA_SESSIONS_CONFIG", str(other))
    assert load_settings(write_yaml("root: /from-argument")).root == Path("/from-argument")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "must hold a mapping"),
        ("root: [unclosed\n", "is not valid YAML"),
        ("just a string\n", "must hold a mapping"),
    ],
)
def test_a_yaml_file_that_is_not_a_mapping_is_a_config_error(
    write_yaml: WriteYaml, text: str, message: str
) -> None:  # type: ignore[no-untyped-def]
    assert message in config_error(write_yaml(text))


def test_a_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    assert "cannot read config file" in config_error(tmp_path / "absent.yaml")


# --- environment -------------------------------------------------------------------------------


def test_environment_sets_nested_keys_with_double_underscore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WA_SESSIONS_RULES__SESSION__MAX_AGE", "7d")
    monkeypatch.setenv("WA_SESSIONS_RULES__SENDER_KEY__MAX_AGE", "2d")
    monkeypatch.setenv("WA_SESSIONS_RULES__PRE_KEY__KEEP_NEWEST", "30")
    monkeypatch.setenv("WA_SESSIONS_EMERGENCY__RULES__SESSION__MAX_AGE", "1d")
    monkeypatch.setenv("WA_SESSIONS_THRESHOLDS__WARNING", "160")
    monkeypatch.setenv("WA_SESSIONS_AUTO__COOLDOWN", "2h")
    monkeypatch.setenv("WA_SESSIONS_TENANT_PATTERN", "*")
    settings = load_settings()
    assert settings.rules == {
        "session": Rule(max_age=7 * DAY),
        "sender-key": Rule(max_age=2 * DAY),
        "pre-key": Rule(keep_newest=30),
    }
    assert settings.emergency.rules["session"] == Rule(max_age=DAY)
    assert settings.emergency.rules["sender-key"] == Rule(max_age=DAY)
    assert settings.thresholds.warning == 160
    assert settings.thresholds.critical == 170
    assert settings.auto.cooldown == 7200
    assert settings.tenant_pattern == "*"


def test_environment_root_is_wa_sessions_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WA_SESSIONS_ROOT", "/srv/a")
    assert load_settings().root == Path("/srv/a")


def test_baileys_sessions_path_sets_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAILEYS_SESSIONS_PATH", "/srv/legacy")
    assert load_settings().root == Path("/srv/legacy")


def test_wa_sessions_root_wins_over_baileys_sessions_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAILEYS_SESSIONS_PATH", "/srv/legacy")
    monkeypatch.setenv("WA_SESSIONS_ROOT", "/srv/new")
    assert load_settings().root == Path("/srv/new")


def test_baileys_sessions_path_wins_over_the_yaml_file(
    write_yaml: WriteYaml, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BAILEYS_SESSIONS_PATH", "/srv/legacy")
    assert load_settings(write_yaml("root: /from-yaml")).root == Path("/srv/legacy")


def test_notification_webhook_sets_the_webhook_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFICATION_WEBHOOK", "http://127.0.0.1:9/legacy")
    monkeypatch.setenv("WA_SESSIONS_NOTIFY__TIMEOUT", "3s")
    notify = load_settings().notify
    assert notify.webhook_url == "http://127.0.0.1:9/legacy"
    assert notify.timeout == 3


def test_wa_sessions_webhook_url_wins_over_notification_webhook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFICATION_WEBHOOK", "http://127.0.0.1:9/legacy")
    monkeypatch.setenv("WA_SESSIONS_NOTIFY__WEBHOOK_URL", "http://127.0.0.1:9/new")
    assert load_settings().notify.webhook_url == "http://127.0.0.1:9/new"


# --- precedence --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_root", "env_root", "cli_root", "expected"),
    [
        (None, None, None, "/opt/ai-admin/baileys_sessions"),
        ("/from-yaml", None, None, "/from-yaml"),
        ("/from-yaml", "/from-env", None, "/from-env"),
        ("/from-yaml", "/from-env", "/from-cli", "/from-cli"),
        (None, None, "/from-cli", "/from-cli"),
        ("/from-yaml", None, "/from-cli", "/from-cli"),
    ],
)
def test_precedence_is_command_line_then_environment_then_yaml_then_defaults(
    write_yaml: WriteYaml,
    monkeypatch: pytest.MonkeyPatch,
    yaml_root: str | None,
    env_root: str | None,
    cli_root: str | None,
    expected: str,
) -> None:
    config_file = write_yaml(f"root: {yaml_root}") if yaml_root else None
    if env_root:
        monkeypatch.setenv("WA_SESSIONS_ROOT", env_root)
    cli_values = {"root": Path(cli_root)} if cli_root else {}
    assert load_settings(config_file, cli_values).root == Path(expected)


def test_environment_wins_over_yaml_for_nested_keys_and_keeps_yaml_siblings(
    write_yaml: WriteYaml, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_yaml(
        "thresholds: {warning: 100, critical: 110, trigger: 120, emergency: 130, danger: 140}\n"
        "rules: {session: {max_age: 14d, keep_newest: 100}}\n"
    )
    monkeypatch.setenv("WA_SESSIONS_THRESHOLDS__WARNING", "105")
    monkeypatch.setenv("WA_SESSIONS_RULES__SESSION__MAX_AGE", "7d")
    settings = load_settings(path)
    assert settings.thresholds.as_mapping() == {
        "warning": 105,
        "critical": 110,
        "trigger": 120,
        "emergency": 130,
        "danger": 140,
    }
    assert settings.rules["session"] == Rule(max_age=7 * DAY, keep_newest=100)


def test_environment_override_of_a_dashed_category_keeps_its_yaml_siblings(
    write_yaml: WriteYaml, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_yaml("rules: {sender-key: {max_age: 14d, keep_newest: 100}}")
    monkeypatch.setenv("WA_SESSIONS_RULES__SENDER_KEY__MAX_AGE", "7d")
    assert load_settings(path).rules["sender-key"] == Rule(max_age=7 * DAY, keep_newest=100)


def test_environment_override_of_a_dashed_category_wins_over_yaml(
    write_yaml: WriteYaml, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_yaml("rules: {pre-key: {keep_newest: 30}}")
    monkeypatch.setenv("WA_SESSIONS_RULES__PRE_KEY__KEEP_NEWEST", "10")
    assert load_settings(path).rules["pre-key"].keep_newest == 10


# --- durations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("10m", 600),
        ("6h", 6 * 3600),
        ("14d", 14 * DAY),
        ("2w", 14 * DAY),
        ("0s", 0),
        ("1d", DAY),
    ],
)
def test_parse_duration_reads_seconds_minutes_hours_days_weeks(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "value",
    ["", "14", "d", "14x", "1.5d", "-1d", "+1d", "14D", "14 days", "1d2h", "1y", "P14D", None, 14, 3.5, True],
)
def test_parse_duration_rejects_anything_else(value: object) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(14 * DAY, "14d"), (DAY, "1d"), (6 * 3600, "6h"), (600, "10m"), (90, "90s"), (30, "30s"), (0, "0s")],
)
def test_format_duration_uses_the_largest_exact_unit_up_to_days(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("key", "yaml_text"),
    [
        ("rules.session.max_age", "rules: {session: {max_age: 14x}}"),
        ("rules.session.max_age", "rules: {session: {max_age: '14'}}"),
        ("emergency.rules.sender-key.max_age", "emergency: {rules: {sender-key: {max_age: 1.5d}}}"),
        ("auto.cooldown", "auto: {cooldown: soon}"),
        ("locks.wait", "locks: {wait: 1y}"),
        ("notify.timeout", "notify: {timeout: 5 seconds}"),
    ],
)
def test_a_bad_duration_is_a_config_error_naming_the_key(
    write_yaml: WriteYaml, key: str, yaml_text: str
) -> None:  # type: ignore[no-untyped-def]
    message = config_error(write_yaml(yaml_text))
    assert f"{key}: not a duration" in message


def test_a_bad_duration_in_the_environment_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WA_SESSIONS_RULES__SESSION__MAX_AGE", "7")
    assert "rules.session.max_age: not a duration" in config_error()


def test_a_bare_number_in_yaml_is_not_a_duration(write_yaml: WriteYaml) -> None:
    assert "rules.session.max_age" in config_error(write_yaml("rules: {session: {max_age: 14}}"))


def test_a_negative_number_in_yaml_is_not_a_duration(write_yaml: WriteYaml) -> None:
    assert "rules.session.max_age" in config_error(write_yaml("rules: {session: {max_age: -5}}"))


# --- unknown keys -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        ("colour: blue", "colour"),
        ("auto: {cooldwn: 1h}", "auto.cooldwn"),
        ("notify: {url: 'http://x'}", "notify.url"),
        ("thresholds: {panic: 200}", "thresholds.panic"),
        ("rules: {session: {max_agee: 7d}}", "rules.session.max_agee"),
        ("emergency: {rulez: {}}", "emergency.rulez"),
    ],
)
def test_an_unknown_key_is_a_config_error_naming_it(write_yaml: WriteYaml, yaml_text: str, key: str) -> None:  # type: ignore[no-untyped-def]
    assert f"{key}: unknown key" in config_error(write_yaml(yaml_text))


def test_an_unknown_nested_key_in_the_environment_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WA_SESSIONS_AUTO__COOLDWN", "1h")
    assert "auto.cooldwn: unknown key" in config_error()


@pytest.mark.parametrize("category", ["sessions", "unknown", "prekey", "memory"])
def test_a_rule_for_an_unknown_category_is_a_config_error_naming_it(
    write_yaml: WriteYaml, category: str
) -> None:  # type: ignore[no-untyped-def]
    message = config_error(write_yaml(f"rules: {{{category}: {{max_age: 1d}}}}"))
    assert f"unknown category '{category}'" in message
    assert "rules" in message


def test_an_empty_rule_is_a_config_error(write_yaml: WriteYaml) -> None:
    assert "rules.session: a rule needs max_age, keep_newest or both" in config_error(
        write_yaml("rules: {session: {}}")
    )


def test_a_negative_keep_newest_is_a_config_error(write_yaml: WriteYaml) -> None:
    assert "rules.pre-key.keep_newest" in config_error(write_yaml("rules: {pre-key: {keep_newest: -1}}"))


@pytest.mark.parametrize("pattern", ["", "a/b", ".hidden_*"])
def test_a_tenant_pattern_that_could_leave_root_is_a_config_error(pattern: str) -> None:
    assert "tenant_pattern" in config_error(cli_values={"tenant_pattern": pattern})


# --- thresholds --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "thresholds",
    [
        "{warning: 170, critical: 150}",
        "{warning: 150, critical: 150}",
        "{danger: 179}",
        "{emergency: 186}",
        "{warning: 185, critical: 180, trigger: 175, emergency: 170, danger: 150}",
    ],
)
def test_thresholds_that_are_not_strictly_ascending_are_a_config_error(
    write_yaml: WriteYaml, thresholds: str
) -> None:  # type: ignore[no-untyped-def]
    message = config_error(write_yaml(f"thresholds: {thresholds}"))
    assert "thresholds: must be strictly ascending" in message


def test_non_ascending_thresholds_from_the_environment_are_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WA_SESSIONS_THRESHOLDS__WARNING", "190")
    assert "thresholds: must be strictly ascending" in config_error()


def test_a_threshold_that_is_not_a_number_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WA_SESSIONS_THRESHOLDS__WARNING", "many")
    assert "thresholds.warning" in config_error()


# --- the protected floor -----------------------------------------------------------------------

PROTECTED = ["creds", "app-state-sync-key", "app-state-sync-version", "lid-mapping"]


@pytest.mark.parametrize("section", ["rules", "emergency.rules"])
@pytest.mark.parametrize("category", PROTECTED)
def test_a_rule_on_a_protected_category_is_rejected(
    write_yaml: WriteYaml, section: str, category: str
) -> None:  # type: ignore[no-untyped-def]
    if section == "rules":
        yaml_text = f"rules: {{{category}: {{max_age: 30d}}}}"
    else:
        yaml_text = f"emergency: {{rules: {{{category}: {{keep_newest: 1000}}}}}}"
    message = config_error(write_yaml(yaml_text))
    assert f"{section}.{category}: '{category}' is protected" in message


@pytest.mark.parametrize("spelling", ["lid_mapping", "LID-MAPPING", "App_State_Sync_Key"])
def test_a_protected_category_is_rejected_however_it_is_spelled(write_yaml: WriteYaml, spelling: str) -> None:  # type: ignore[no-untyped-def]
    assert "is protected" in config_error(write_yaml(f"rules: {{{spelling}: {{max_age: 30d}}}}"))


def test_a_null_rule_on_a_protected_category_is_rejected_too(write_yaml: WriteYaml) -> None:
    assert "'creds' is protected" in config_error(write_yaml("rules: {creds: null}"))


@pytest.mark.parametrize(
    ("variable", "category"),
    [
        ("WA_SESSIONS_RULES__CREDS__MAX_AGE", "creds"),
        ("WA_SESSIONS_RULES__LID_MAPPING__MAX_AGE", "lid-mapping"),
        ("WA_SESSIONS_RULES__APP_STATE_SYNC_KEY__KEEP_NEWEST", "app-state-sync-key"),
        ("WA_SESSIONS_EMERGENCY__RULES__APP_STATE_SYNC_VERSION__MAX_AGE", "app-state-sync-version"),
    ],
)
def test_a_rule_on_a_protected_category_from_the_environment_is_rejected(
    monkeypatch: pytest.MonkeyPatch, variable: str, category: str
) -> None:
    monkeypatch.setenv(variable, "1" if variable.endswith("KEEP_NEWEST") else "1d")
    assert f"'{category}' is protected" in config_error()


def test_a_rule_on_a_protected_category_from_the_command_line_is_rejected() -> None:
    assert "'creds' is protected" in config_error(cli_values={"rules": {"creds": {"max_age": "1d"}}})


# --- every bad key in one message -----------------------------------------------------------------


def test_one_config_error_names_every_bad_key(write_yaml: WriteYaml) -> None:
    path = write_yaml(
        """
colour: blue
rules:
  session: {max_age: 14x}
  sender-key: {max_age: 1y}
thresholds: {warning: 200}
auto: {cooldown: soon}
notify: {bar: 1}
"""
    )
    message = config_error(path)
    for key in (
        "colour: unknown key",
        "rules.session.max_age: not a duration",
        "rules.sender-key.max_age: not a duration",
        "thresholds: must be strictly ascending",
        "auto.cooldown: not a duration",
        "notify.bar: unknown key",
    ):
        assert key in message
    assert message.count("invalid configuration") == 1


def test_one_config_error_names_keys_from_yaml_and_environment_together(
    write_yaml: WriteYaml, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WA_SESSIONS_LOCKS__WAIT", "forever")
    message = config_error(write_yaml("auto: {cooldown: soon}\nemergency: {rules: {creds: {max_age: 1d}}}"))
    assert "locks.wait" in message
    assert "auto.cooldown" in message
    assert "'creds' is protected" in message


def test_one_config_error_names_a_protected_rule_and_a_bad_duration_beside_it(write_yaml: WriteYaml) -> None:
    message = config_error(write_yaml("rules: {creds: {max_age: 1d}, session: {max_age: 14x}}"))
    assert "'creds' is protected" in message
    assert "rules.session.max_age" in message


@pytest.mark.parametrize("text", ["1: x\n", "null: x\n", "true: 5\n"])
def test_a_top_level_key_that_is_not_text_is_an_unknown_key(tmp_path: Path, text: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=r"unknown key"):
        load_settings(config, {"root": str(tmp_path)})
