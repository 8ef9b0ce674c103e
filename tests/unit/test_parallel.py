"""parallel.py: ordered results from forked workers, and how many workers `--jobs 0` means."""

from __future__ import annotations

import os

import pytest

from wa_sessions import parallel


def test_ordered_map_gives_results_in_the_order_of_the_items() -> None:
    items = list(range(200))
    offset = 1000  # a closure: inherited by the forked workers, not pickled
    assert list(parallel.ordered_map(lambda item: item + offset, items, 3)) == [i + 1000 for i in items]


def test_ordered_map_runs_in_other_processes_when_asked_to() -> None:
    pids = set(parallel.ordered_map(lambda _: os.getpid(), list(range(64)), 2))
    assert os.getpid() not in pids


def test_ordered_map_with_one_job_runs_here() -> None:
    assert set(parallel.ordered_map(lambda _: os.getpid(), list(range(64)), 1)) == {os.getpid()}


def test_ordered_map_raises_a_worker_exception_here() -> None:
    def fail_on_seven(item: int) -> int:
        if item == 7:
            raise ValueError("seven")
        return item

    with pytest.raises(ValueError, match="seven"):
        list(parallel.ordered_map(fail_on_seven, list(range(40)), 2))


@pytest.mark.parametrize(
    ("jobs", "items", "cpus", "expected"),
    [
        (1, 5000, 8, 1),
        (4, 5000, 2, 4),  # asked for: given, even beyond the CPUs
        (4, 3, 2, 3),  # never more processes than tenants
        (0, 5000, 2, 2),  # automatic: one per CPU
        (0, 40, 2, 1),  # automatic: a small fleet stays in one process
        (0, 0, 2, 1),
    ],
)
def test_effective_jobs(
    monkeypatch: pytest.MonkeyPatch, jobs: int, items: int, cpus: int, expected: int
) -> None:
    monkeypatch.setattr(parallel, "available_cpus", lambda: cpus)
    assert parallel.effective_jobs(jobs, items) == expected


def test_effective_jobs_rejects_a_negative_count() -> None:
    with pytest.raises(ValueError):
        parallel.effective_jobs(-1, 10)
