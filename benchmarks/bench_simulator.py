"""Simulator speed: the numba event loop against the plain SimPy model, same inputs.

One stage, 4 replicas of 1 core at batch 8, Poisson arrivals at ~70 % load; both engines
simulate the same requests (SimPy on a prefix, since it is ~1000x slower) and must agree
on every latency. Medians of repeated runs (the machine is shared).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _results import markdown_table, record  # noqa: E402
from support.simpy_reference import simulate_reference  # noqa: E402

from themis.planner.model.config import SimConfig  # noqa: E402
from themis.planner.model.serving import Group, Schedule, Stage, StageAllocation, Step  # noqa: E402
from themis.planner.simulation.controllers.schedule import ScheduleController  # noqa: E402
from themis.planner.simulation.driver import simulate_tables  # noqa: E402
from themis.planner.simulation.tables import ServiceTables  # noqa: E402

REPEATS = 5


def scenario(n_requests: int, n_stages: int = 1):
    service = np.zeros((n_stages, 9, 1))
    service[:, 1:, 0] = 8.0 + 2.0 * np.arange(1, 9)  # ms for batch 1..8 on 1 core
    tables = ServiceTables((1,), service)
    capacity_rps = 4 * 8 * 1000.0 / service[0, 8, 0]
    rate_rps = 0.7 * capacity_rps
    arrivals = np.cumsum(np.random.default_rng(0).exponential(1.0 / rate_rps, n_requests))
    horizon = float(arrivals[-1]) + 1.0
    # four planned intervals, alternating 4 and 5 replicas so scaling is exercised too
    cuts = np.linspace(0.0, horizon, 5)
    steps = [
        Step(t0, t1, rate_rps, tuple(StageAllocation((Group(4 + i % 2, 1),), 8) for _ in range(n_stages)))
        for i, (t0, t1) in enumerate(zip(cuts, cuts[1:]))
    ]
    schedule = Schedule("bench", 200.0, 99.0, horizon / 4, None, 30.0, 1.0,
                        tuple(Stage(f"s{i}", "m") for i in range(n_stages)), steps)
    return arrivals, schedule, tables, horizon


def median_rate(run, n: int) -> float:
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return n / statistics.median(times)


def main() -> None:
    load_before = os.getloadavg()
    config = SimConfig(cold_start_s=30.0, resize_s=1.0, slo_ms=200.0)
    rows = []
    for n_stages in (1, 2):
        arrivals, schedule, tables, horizon = scenario(2_000_000, n_stages)
        simulate_tables(arrivals[:1000], ScheduleController(schedule), tables, config)  # compile outside the timing
        fast = median_rate(lambda: simulate_tables(arrivals, ScheduleController(schedule), tables, config), arrivals.size)
        n_ref = 20_000
        ref_arrivals, ref_schedule, _, ref_horizon = scenario(n_ref, n_stages)
        slow = median_rate(
            lambda: simulate_reference(ref_arrivals, ScheduleController(ref_schedule), tables, config, ref_horizon), n_ref
        )
        ours = simulate_tables(ref_arrivals, ScheduleController(ref_schedule), tables, config).latencies_ms
        ref = simulate_reference(ref_arrivals, ScheduleController(ref_schedule), tables, config, ref_horizon)[0]
        agree = bool(np.allclose(ours, ref, rtol=0, atol=1e-9))
        rows.append([n_stages, f"{arrivals.size:,}", f"{fast:,.0f}", f"{n_ref:,}", f"{slow:,.0f}", f"{fast / slow:,.0f}x", "yes" if agree else "NO"])
    table = markdown_table(
        ["stages", "requests (numba)", "numba req/s (median)", "requests (SimPy)", "SimPy req/s (median)", "speed-up", "same latencies"],
        rows,
    )
    load = " / ".join(f"{x:.2f}" for x in load_before) + " before, " + " / ".join(f"{x:.2f}" for x in os.getloadavg()) + " after"
    note = (
        f"One stage = 4-5 replicas x 1 core, batch 8, Poisson at 70 % load, 4 planned intervals; median of {REPEATS} runs "
        f"on a shared 2-core machine (load average 1/5/15 min: {load}). Target: >= 1,000,000 requests/s for one stage."
    )
    print(table)
    print(note)
    record("simulator", "Simulator speed (numba vs SimPy)", table + "\n\n" + note)


if __name__ == "__main__":
    main()
