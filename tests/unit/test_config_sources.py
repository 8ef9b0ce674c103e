"""config_sources.py and the checks of config_types.py: how the environment, the YAML file and the
command line are read and merged, as pydantic-settings read them before (issue 13: no pydantic)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wa_sessions.config import ConfigError, Locks, Settings, load_settings
from wa_sessions.config_sources import deep_update, environment_values
from wa_sessions.rules import Rule

DAY = 86400


@pytest.fixture(autouse=True)
def in_tmp_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)


def config_error(config_file: Path | None = None, cli_values: dict[str, Any] | None = None) -> str:
    with pytest.raises(ConfigError) as raised:
        load_settings(config_file, cli_values)
    return str(raised.value)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# --- the environment -----------------------------------------------------------------------------


def test_a_table_may_be_given_as_json_and_its_nested_names_are_laid_over_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WA_SESSIONS_THRESHOLDS", '{"Warning": 100, "critical": 110}')
    monkeypatch.setenv("WA_SESSIONS_THRESHOLDS__CRITICAL", "120")
    assert load_settings().thresholds.as_mapping() == {
        "warning": 100,
        "critical": 120,
        "trigger": 175,
        "emergency": 180,
        "danger": 185,
    }


def test_a_whole_rule_from_the_environment_is_json_and_null_drops_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WA_SESSIONS_RULES__SESSION", '{"max_age": "7d", "keep_newest": 5}')
    monkeypatch.setenv("WA_SESSIONS_EMERGENCY__RULES__PRE_KEY", "null")
    loaded = load_settings()
    assert loaded.rules["session"] == Rule(max_age=7 * DAY, keep_newest=5)
    assert "pre-key" not in loaded.emergency.rules


def test_variable_names_are_read_without_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("wa_sessions_root", "/srv/lower")
    monkeypatch.setenv("WA_SESSIONS_Rules__Sender_Key__Max_Age", "2d")
    loaded = load_settings()
    assert loaded.root == Path("/srv/lower")
    assert loaded.rules["sender-key"] == Rule(max_age=2 * DAY)


def test_an_unknown_top_level_variable_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WA_SESSIONS_BOGUS", "1")
    monkeypatch.setenv("WA_SESSIONS_ROOT__X", "1")
    assert load_settings() == Settings()


def test_a_table_that_is_not_json_is_named_beside_the_other_bad_keys(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WA_SESSIONS_THRESHOLDS", "warning=1")
    monkeypatch.setenv("wa_sessions_emergency__rules", "{")
    message = config_error(write(tmp_path, "auto: {cooldown: soon}"))
    assert message.count("invalid configuration") == 1
    assert "thresholds: WA_SESSIONS_THRESHOLDS is not valid JSON" in message
    assert "emergency.rules: WA_SESSIONS_EMERGENCY__RULES is not valid JSON" in message
    assert "auto.cooldown: not a duration" in message


def test_a_bare_number_in_a_json_value_is_not_a_duration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WA_SESSIONS_AUTO", '{"cooldown": 5}')
    assert "auto.cooldown: not a duration: '5'" in config_error()


def test_environment_values_reads_only_the_settings_names() -> None:
    errors: list[str] = []
    values = environment_values(
        {"WA_SESSIONS_LOCKS__WAIT": "1s", "WA_SESSIONS_CONFIG": "/x.yaml", "HOME": "/root"}, errors
    )
    assert values == {"locks": {"wait": "1s"}}
    assert errors == []


# --- merging -------------------------------------------------------------------------------------


def test_deep_update_merges_nested_mappings_and_replaces_the_rest() -> None:
    base = {"a": {"b": 1, "c": 2}, "d": [1]}
    assert deep_update(base, {"a": {"b": 3}, "d": {"e": 1}}) == {"a": {"b": 3, "c": 2}, "d": {"e": 1}}
    assert base == {"a": {"b": 1, "c": 2}, "d": [1]}


def test_a_yaml_rule_table_keeps_its_other_categories_under_a_command_line_table(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The environment's table that is no mapping is overridden by the command line's, and the
    YAML file's categories stay under the result (each source under the ones above together)."""
    monkeypatch.setenv("WA_SESSIONS_RULES", "190")
    path = write(tmp_path, "rules: {pre-key: {keep_newest: 7}}")
    loaded = load_settings(path, {"rules": {"session": {"max_age": "2d"}}})
    assert loaded.rules["pre-key"] == Rule(keep_newest=7)
    assert loaded.rules["session"] == Rule(max_age=2 * DAY)


# --- types ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("thresholds: {warning: abc}", "thresholds.warning: Input should be a valid integer"),
        ("thresholds: {warning: 1.5}", "thresholds.warning: Input should be a valid integer"),
        ("thresholds: 5", "thresholds: Input should be a valid dictionary"),
        ("root: [1]", "root: Input is not a valid path"),
        ("tenant_pattern: 7", "tenant_pattern: Input should be a valid string"),
        ("rules: [1]", "rules: Input should be a valid dictionary"),
        ("rules: {session: 5}", "rules.session: Input should be a valid dictionary"),
        ("rules: {pre-key: {keep_newest: 20000000}}", "rules.pre-key.keep_newest: Input should be less than"),
        ("notify: {webhook_url: 5}", "notify.webhook_url: Input should be a valid string"),
        ("auto: {1: x}", "auto.1: Keys should be strings"),
    ],
)
def test_a_value_of_the_wrong_type_is_one_message_naming_its_key(
    tmp_path: Path, yaml_text: str, expected: str
) -> None:
    message = config_error(write(tmp_path, yaml_text))
    assert message.startswith(f"invalid configuration: {expected}")
    assert message.count("; ") == 0


@pytest.mark.parametrize(("text", "value"), [("' 7 '", 7), ("'1_000'", 1000), ("7.0", 7), ("'7.00'", 7)])
def test_a_count_is_read_as_before(tmp_path: Path, text: str, value: int) -> None:
    assert load_settings(write(tmp_path, f"rules: {{pre-key: {{keep_newest: {text}}}}}")).rules[
        "pre-key"
    ] == Rule(keep_newest=value)


def test_as_json_writes_durations_and_rules_as_config_show_does() -> None:
    loaded = load_settings(cli_values={"root": "/srv", "state_dir": "/var/lib/x"})
    shown = loaded.as_json()
    assert shown["root"] == "/srv" and shown["state_dir"] == "/var/lib/x"
    assert shown["rules"]["session"] == {"max_age": "14d", "keep_newest": None}
    assert shown["notify"] == {"webhook_url": None, "timeout": "5s"}


def test_settings_are_frozen_and_replaced_whole() -> None:
    loaded = load_settings(cli_values={"locks": {"wait": "10s"}})
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.root = Path("/elsewhere")  # type: ignore[misc]
    assert dataclasses.replace(loaded, locks=Locks(wait=0)).locks.wait == 0
    assert loaded.locks.wait == 10


# --- any mapping: settings or one ConfigError ---------------------------------------------------------

_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(),
    st.sampled_from(["14d", "0s", "7", "", "x", "company_*", "/srv", "redis://h:1/0"]),
)
_keys = st.sampled_from(
    ["root", "rules", "session", "sender_key", "creds", "max_age", "keep_newest", "warning", "x"]
)
_values = st.recursive(
    _leaf, lambda inner: st.lists(inner, max_size=2) | st.dictionaries(_keys, inner, max_size=3), max_leaves=8
)
_ERROR_PART = re.compile(r"[^:;]+: .+")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["root", "tenant_pattern", "state_dir", "rules", "emergency", "thresholds", "auto", "locks", "notify", "store", "bogus"]), _values, max_size=4))  # fmt: skip
def test_any_mapping_gives_settings_or_one_config_error_naming_keys(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    path = tmp_path / "random.yaml"
    path.write_text(yaml.safe_dump(config))
    try:
        loaded = load_settings(path)
    except ConfigError as error:
        message = str(error)
        assert message.startswith("invalid configuration: ")
        assert all(
            _ERROR_PART.fullmatch(part)
            for part in message.removeprefix("invalid configuration: ").split("; ")
        )
    else:
        assert isinstance(loaded, Settings)
        assert load_settings(path) == loaded
