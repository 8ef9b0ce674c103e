"""Timing whole processes: wall and CPU time, and the peak memory of a process and its children."""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(slots=True)
class Sample:
    """One timed process: wall seconds, CPU seconds (user + system, children included), peak RSS
    of its largest process (KB)."""

    wall: float
    cpu: float
    max_rss_kb: int


@dataclass(slots=True)
class Memory:
    """Peak memory of a process tree, sampled every 20 ms (KB): RSS summed over its processes
    (shared pages counted in each), and PSS (shared pages divided among them)."""

    rss_kb: int = 0
    pss_kb: int = 0


def median_wall(samples: Sequence[Sample]) -> float:
    return statistics.median(sample.wall for sample in samples)


def median_cpu(samples: Sequence[Sample]) -> float:
    return statistics.median(sample.cpu for sample in samples)


def _tree_memory_kb(pid: int) -> tuple[int, int]:
    """RSS and PSS of a process and its descendants, in KB; (0, 0) once it is gone."""
    rss = pss = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{current}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
                    break
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                children = Path(f"/proc/{current}/task/{task}/children").read_text().split()
                pending.extend(int(child) for child in children)
    return rss, pss


def timed(
    argv: Sequence[str],
    *,
    stdout: Any = subprocess.DEVNULL,
    sample_memory: bool = False,
    env: dict[str, str] | None = None,
) -> tuple[Sample, Memory]:
    """Run a command as a whole process; return its Sample and, when `sample_memory`, the peak
    memory of its process tree. Raise RuntimeError if it fails."""
    memory = Memory()
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, env=env)
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.02):
                rss, pss = _tree_memory_kb(process.pid)
                memory.rss_kb = max(memory.rss_kb, rss)
                memory.pss_kb = max(memory.pss_kb, pss)

        sampler = threading.Thread(target=sample, daemon=True) if sample_memory else None
        if sampler:
            sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        done.set()
        if sampler:
            sampler.join()
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            stderr.seek(0)
            message = stderr.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(argv)} exited {process.returncode}: {message}")
    return Sample(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss), memory


def interleaved(commands: Sequence[tuple[list[Sample], list[str]]], runs: int) -> None:
    """Run each command `runs` times, appending to its list, in rounds whose order flips every
    round: the machine's speed drifts over minutes, and must drift for all of them alike."""
    for run in range(runs):
        for target, command in commands if run % 2 == 0 else reversed(commands):
            target.append(timed(command)[0])
