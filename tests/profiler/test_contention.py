"""What a worker got of its CPUs: real /proc readings of this process, and the arithmetic of `Usage`.

Whether a real worker sharing its CPU is caught is tested end to end in
`test_column.py` (a spinner on the worker's CPU).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from themis.profiler.contention import CONTENTION_THRESHOLD, Probe, Usage
from themis.profiler.devices import available_cpus


def test_a_probe_reads_this_process_for_real() -> None:
    probe = Probe(available_cpus(), threads=1)
    before = probe.snapshot()
    deadline = time.perf_counter() + 0.3
    while time.perf_counter() < deadline:
        pass
    usage = probe.usage(before, probe.snapshot())
    assert usage.wall_s >= 0.3 and usage.windows == 1
    assert 0 < usage.cpu_s <= usage.wall_s * len(available_cpus()) + 0.02
    assert 0 <= usage.other_load <= 1.0 + 0.1 and 0 <= usage.steal <= 1.0
    if Path("/proc/self/schedstat").exists():
        assert usage.has_schedstat and usage.run_s > 0 and 0 <= usage.runqueue_wait <= 1
        assert usage.run_s + usage.wait_s >= 0.25  # a spinning thread is runnable throughout: on a CPU or waiting for one
        assert usage.run_s == pytest.approx(usage.cpu_s, abs=0.05)  # schedstat and getrusage agree on on-CPU time
    if Path("/proc/pressure/cpu").exists():
        assert usage.has_pressure and 0 <= usage.cpu_pressure <= 1.0 + 0.05


def test_usage_adds_up_across_windows_and_processes() -> None:
    a = Usage(wall_s=1.0, cpu_s=0.9, run_s=0.9, wait_s=0.1, others_s=0.1, threads=1, cpus=1)
    b = Usage(wall_s=1.0, cpu_s=0.5, run_s=0.5, wait_s=0.5, others_s=0.5, steal_s=0.2, threads=1, cpus=1)
    total = a + b
    assert (total.wall_s, total.windows) == (2.0, 2) and Usage.none() + a == a and a + Usage.none() == a
    assert total.cpu_share == pytest.approx(0.7) and total.runqueue_wait == pytest.approx(0.6 / 2.0)
    assert total.other_load == pytest.approx(0.3) and total.steal == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("usage", "contended"),
    [
        (Usage(wall_s=1.0, cpu_s=1.0, run_s=1.0, wait_s=0.0, threads=1, cpus=1), False),
        (Usage(wall_s=1.0, cpu_s=0.5, run_s=0.5, wait_s=0.5, threads=1, cpus=1), True),
        (Usage(wall_s=1.0, cpu_s=0.95, run_s=0.95, wait_s=0.0, steal_s=0.3, threads=1, cpus=1), True),
        # Idle threads (little parallel work) are not contention: nobody else waited them out.
        (Usage(wall_s=1.0, cpu_s=0.6, run_s=0.6, wait_s=0.01, others_s=0.0, threads=2, cpus=2), False),
        # Without schedstat, other processes' time on the worker's CPUs stands in.
        (Usage(wall_s=1.0, cpu_s=0.5, others_s=0.5, threads=1, cpus=1, has_schedstat=False), True),
        (Usage.none(), False),
    ],
)
def test_contention_is_the_share_of_its_cpus_the_worker_lost(usage: Usage, contended: bool) -> None:
    assert usage.is_contended() is contended
    assert usage.is_contended(threshold=1.0) is False
    assert CONTENTION_THRESHOLD == 0.10


def test_missing_readings_are_nan_not_zero() -> None:
    usage = Usage(wall_s=1.0, cpu_s=1.0, threads=1, cpus=1, has_schedstat=False, has_pressure=False)
    assert math.isnan(usage.runqueue_wait) and math.isnan(usage.cpu_pressure)
    assert "waited" not in usage.describe() and "got 100%" in usage.describe()
