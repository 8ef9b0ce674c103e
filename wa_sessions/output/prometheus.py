"""The report as node_exporter textfile metrics (`wa_sessions_` prefix, a `company` label),
built by prometheus_client (a custom collector, `generate_latest`).

prometheus_client writes every value as a float (`3.0`, `1.7e+09`) where the hand-written format
before it wrote `3`: the same numbers to every parser, not the same text. `report --output`
writes the text with state.write_atomically rather than prometheus_client's `write_to_textfile`,
whose temp file has a predictable name opened without O_EXCL/O_NOFOLLOW and is not fsynced:
a tool running as root must not write through a link planted at that name.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from wa_sessions import layout
from wa_sessions.results import Result

_LEVELS = "0 healthy, 1 warning, 2 critical, 3 trigger, 4 emergency, 5 danger; none for a tenant that could not be read"


def _family(
    name: str,
    kind: str,
    help_text: str,
    labels: tuple[str, ...],
    samples: list[tuple[tuple[str, ...], float]],
) -> Metric:
    make = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
    family = make(f"wa_sessions_{name}", help_text, labels=list(labels))
    for values, value in samples:
        family.add_metric(list(values), value)
    return family


class _ReportCollector:
    """Yields the report's metric families (prometheus_client's custom collector protocol)."""

    def __init__(self, result: Result):
        self.result = result

    def collect(self) -> Iterator[Metric]:
        result = self.result
        # A tenant that could not be read (status `unknown`) has no files, bytes nor level: it is
        # counted in wa_sessions_tenants{status="unknown"} and wa_sessions_scan_errors, never as 0.
        tenants = [(t, (t.before.company,)) for t in result.tenants]
        known = [(t, c) for t, c in tenants if t.before.known]
        company = ("company",)
        yield _family("tenants", "gauge", "Tenants per status level.", ("status",),
                      [((s,), n) for s, n in result.statuses.items()])  # fmt: skip
        yield _family("category_files", "gauge", "Files per category over all tenants.", ("category",),
                      [((c,), n) for c, n in result.categories.items()])  # fmt: skip
        yield _family("tenant_files", "gauge", "Files in the tenant folder (dot-entries not counted).", company,
                      [(c, t.before.files) for t, c in known])  # fmt: skip
        yield _family("tenant_bytes", "gauge", "Bytes of the tenant's files.", company,
                      [(c, t.before.bytes) for t, c in known])  # fmt: skip
        yield _family("tenant_status_level", "gauge", f"Status level of the tenant: {_LEVELS}.", company,
                      [(c, layout.status_rank(t.before.status)) for t, c in known])  # fmt: skip
        yield _family("tenant_problems", "gauge", "Problems the scan reported for the tenant.", company,
                      [(c, len(t.before.problems)) for t, c in tenants])  # fmt: skip
        yield _family(
            "tenant_last_cleanup_timestamp_seconds", "gauge",
            "When a file of the tenant was last deleted (from the history), Unix time.", company,
            [(c, datetime.fromisoformat(t.last_cleanup).timestamp()) for t, c in tenants if t.last_cleanup],
        )  # fmt: skip
        yield _family("tenant_deleted_files_total", "counter", "Files deleted from the tenant (from the history).",
                      company, [(c, t.deleted_total) for t, c in tenants])  # fmt: skip
        yield _family("tenant_deleted_bytes_total", "counter", "Bytes deleted from the tenant (from the history).",
                      company, [(c, t.freed_bytes_total) for t, c in tenants])  # fmt: skip
        disk = result.disk
        if disk is not None:
            for name, help_text, value in (
                ("filesystem_size_bytes", "Size of the filesystem holding root.", disk.bytes_total),
                (
                    "filesystem_avail_bytes",
                    "Bytes available to us on the filesystem holding root.",
                    disk.bytes_free,
                ),
                ("filesystem_files", "Inodes of the filesystem holding root.", disk.inodes_total),
                ("filesystem_files_free", "Free inodes of the filesystem holding root.", disk.inodes_free),
            ):
                yield _family(name, "gauge", help_text, (), [((), value)])
        memory = result.memory
        if memory is not None:  # a store: its server's memory (or table) instead of a filesystem
            used_help = (
                "The size of the store's table (MySQL data and index length)."
                if memory.kind == "table"
                else "Memory the store's server uses (Redis used_memory)."
            )
            for name, help_text, value in (
                ("store_memory_used_bytes", used_help, memory.used_bytes),
                (
                    "store_memory_max_bytes",
                    "The store's server memory limit (Redis maxmemory; 0: none).",
                    memory.max_bytes,
                ),
            ):
                yield _family(name, "gauge", help_text, (), [((), value)])
        yield _family(
            "last_success_timestamp_seconds", "gauge",
            "When the command last finished successfully (exit 0, not a dry run), Unix time.", ("command",),
            [((command,), epoch) for command, epoch in sorted(result.last_success.items())],
        )  # fmt: skip
        yield _family("scan_errors", "gauge", "Tenant folders the report could not read.", (),
                      [((), len(result.errors))])  # fmt: skip
        yield _family("report_timestamp_seconds", "gauge", "When this report was generated, Unix time.", (),
                      [((), datetime.fromisoformat(result.generated_at).timestamp())])  # fmt: skip


def _registry(result: Result) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ReportCollector(result))
    return registry


def report_prometheus(result: Result) -> str:
    """The report in the text exposition format."""
    return generate_latest(_registry(result)).decode("utf-8")
