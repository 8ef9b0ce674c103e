"""results.py: the exit code of a Result (SPEC §7) and the fleet totals the report shows."""

from __future__ import annotations

from wa_sessions.results import LOCK_BUSY, Outcome, Result, TenantState


def _result(*outcomes: Outcome, busy_is_error: bool = True) -> Result:
    return Result("cleanup", "/r", "2030-01-15T12:00:00Z", list(outcomes), busy_is_error=busy_is_error)


def test_exit_code_is_0_when_all_went_well() -> None:
    assert _result(Outcome(TenantState("1", "/r/1"))).exit_code == 0


def test_exit_code_is_1_for_a_failed_file_even_beside_a_busy_tenant() -> None:
    failed = Outcome(TenantState("1", "/r/1"), errors=[("x.json", "denied")])
    busy = Outcome(TenantState("2", "/r/2"), "skipped", skipped_reason=LOCK_BUSY)
    assert _result(failed, busy).exit_code == 1


def test_exit_code_is_3_for_a_busy_tenant_only_where_busy_is_an_error() -> None:
    busy = Outcome(TenantState("2", "/r/2"), "skipped", skipped_reason=LOCK_BUSY)
    assert _result(busy).exit_code == 3
    assert _result(busy, busy_is_error=False).exit_code == 0


def test_fail_on_trips_at_or_above_the_level() -> None:
    result = _result(Outcome(TenantState("1", "/r/1", status="emergency")), Outcome(TenantState("2", "/r/2")))
    result.fail_on = "emergency"
    assert [state.company for state in result.tripped] == ["1"]
    assert result.exit_code == 1
