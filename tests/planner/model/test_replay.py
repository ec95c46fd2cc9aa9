"""The fixed-allocation replay the oracle searches with, against the product simulator and
the independent reference of `plan_support` (same arrivals, same allocation)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from support.plan_support import simulate_stage
from support.standard_setting import CORES, service_row_ms, standard_tables

from themis.planner.model import replay
from themis.planner.model.config import SimConfig
from themis.planner.model.serving import Group, Schedule, Stage, StageAllocation, Step
from themis.planner.simulation.controllers.schedule import ScheduleController
from themis.planner.simulation.driver import simulate_tables

SLO_MS = 400.0


@settings(max_examples=40)
@given(
    seed=st.integers(0, 2**31),
    replicas=st.integers(1, 12),
    batch=st.sampled_from([1, 2, 4, 8, 16]),
    cores=st.sampled_from(CORES),
    load=st.floats(0.2, 1.3),
)
def test_replay_counts_the_violations_the_simulators_count(seed, replicas, batch, cores, load) -> None:
    service = service_row_ms(cores)
    rate = load * replicas * batch * 1000.0 / service[batch]
    arrivals = np.sort(np.random.default_rng(seed).uniform(0.0, 5.0, int(rate * 5.0)))
    counted = replay.violations(arrivals, replicas, batch, service, SLO_MS)
    reference = simulate_stage(arrivals, [(replicas, service)], batch)
    assert counted == int(np.sum(reference > SLO_MS))
    schedule = Schedule(
        policy="fixed", slo_ms=SLO_MS, percentile=99.0, interval_s=60.0, trace_start=None, cold_start_s=30.0, resize_s=1.0,
        stages=(Stage("s", "m"),), steps=[Step(0.0, 60.0, 0.0, (StageAllocation((Group(replicas, cores),), batch),))],
    )
    ours = simulate_tables(arrivals, ScheduleController(schedule), standard_tables(), SimConfig(slo_ms=SLO_MS))
    assert counted == ours.violations
