"""output/prometheus.py: the report as textfile metrics, parsed back with prometheus_client."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from wa_sessions.output.prometheus import report_prometheus
from wa_sessions.results import Result


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_every_metric_parses_back_with_its_value(report_result: Result) -> None:
    samples = _samples(report_prometheus(report_result))
    assert samples[("wa_sessions_tenants", (("status", "emergency"),))] == 1
    assert samples[("wa_sessions_tenant_files", (("company", "7"),))] == 178
    assert samples[("wa_sessions_tenant_status_level", (("company", "7"),))] == 4
    assert samples[("wa_sessions_tenant_deleted_files_total", (("company", "7"),))] == 2
    assert (
        samples[("wa_sessions_tenant_last_cleanup_timestamp_seconds", (("company", "7"),))] == 1_894_701_600
    )
    assert ("wa_sessions_tenant_last_cleanup_timestamp_seconds", (("company", "8"),)) not in samples
    assert samples[("wa_sessions_filesystem_files_free", ())] == 250
    assert samples[("wa_sessions_last_success_timestamp_seconds", (("command", "cleanup"),))] == 1_894_701_600
    assert samples[("wa_sessions_report_timestamp_seconds", ())] == 1_894_708_800


def test_help_and_type_come_once_per_metric_and_values_are_floats(report_result: Result) -> None:
    text = report_prometheus(report_result)
    assert text.count("# TYPE wa_sessions_tenant_files gauge\n") == 1
    assert text.count("# TYPE wa_sessions_tenant_deleted_files_total counter\n") == 1
    assert 'wa_sessions_tenant_files{company="7"} 178.0\n' in text


def test_a_label_value_is_escaped(report_result: Result) -> None:
    report_result.tenants[1].before.company = 'x"y\nz'
    assert ("wa_sessions_tenant_files", (("company", 'x"y\nz'),)) in _samples(
        report_prometheus(report_result)
    )
