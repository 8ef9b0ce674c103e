"""actions/multitenant.py: which action a status calls for, and when a tenant waits for its cooldown."""

from __future__ import annotations

import pytest

from wa_sessions.actions.multitenant import cooldown_reason, due_action

HOUR = 3600


@pytest.mark.parametrize(
    ("status", "action"),
    [
        ("healthy", "none"),
        ("warning", "none"),
        ("critical", "none"),
        ("trigger", "cleanup"),
        ("emergency", "cleanup"),
        ("danger", "emergency"),
    ],
)
def test_due_action_follows_the_status_level(status: str, action: str) -> None:
    assert due_action(status) == action


def test_a_tenant_cleaned_within_the_cooldown_waits_and_is_told_when_it_is_due() -> None:
    assert cooldown_reason(1000.0, 1000.0 + 2 * HOUR, 6 * HOUR) == "cooldown: cleaned 2h ago, due again in 4h"


@pytest.mark.parametrize(
    ("cleaned_at", "cooldown"),
    [(None, 6 * HOUR), (1000.0, 0), (1000.0 - 6 * HOUR, 6 * HOUR)],
    ids=["never cleaned", "no cooldown", "cooldown over"],
)
def test_no_cooldown_applies(cleaned_at: float | None, cooldown: int) -> None:
    assert cooldown_reason(cleaned_at, 1000.0, cooldown) is None


def test_a_clean_in_the_future_clock_moved_back_counts_as_just_now() -> None:
    assert cooldown_reason(5000.0, 1000.0, HOUR) == "cooldown: cleaned 0s ago, due again in 1h"
