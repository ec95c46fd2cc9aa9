"""Planner invariants as hypothesis properties over scripted traces (one rate per minute,
constant inside the minute) with the golden resnet18 profile."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support.plan_support import golden_model

from themis.planner.model.config import PlanConfig, SimConfig
from themis.planner.model.serving import Stage
from themis.planner.optimise.plan import POLICIES, plan
from themis.planner.optimise.space import StageSpace
from themis.planner.simulation.controllers.schedule import ScheduleController
from themis.planner.simulation.driver import simulate
from themis.planner.traffic.trace import Trace

MODEL = golden_model("resnet18")
STAGES = [(Stage("classify", "resnet18"), MODEL)]

rates = st.lists(st.integers(0, 45), min_size=2, max_size=12)
cold = st.sampled_from([0.0, 30.0, 60.0, 150.0])


def trace_of(rates_rps: list[int]) -> Trace:
    counts = np.repeat(np.array(rates_rps, dtype=np.int64), 60)
    return Trace("scripted", "script", None, 1.0, counts)


def config(cold_start_s: float) -> PlanConfig:
    return PlanConfig(slo_ms=600.0, node_cores=16, max_replicas=24, cold_start_s=cold_start_s,
                      batch_sizes=(1, 2, 4, 8), forecast="last", scale_down_delay_s=120.0)


@given(rates_rps=rates, cold_start_s=cold)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_step_keeps_its_own_estimate(rates_rps: list[int], cold_start_s: float) -> None:
    cfg = config(cold_start_s)
    space = StageSpace(STAGES[0][0], [MODEL], cfg)
    for policy in POLICIES:
        schedule = plan(trace_of(rates_rps), STAGES, cfg, policy).schedule
        flagged = set(schedule.infeasible_steps)
        for i, step in enumerate(schedule.steps):
            alloc = step.stages[0]
            latency, capacity = space.estimate(alloc.groups, alloc.batch, alloc.device, step.forecast_rps)
            if i not in flagged:
                assert latency <= alloc.est_latency_ms + 1e-9 <= cfg.slo_ms + 1e-9
                assert capacity >= step.forecast_rps


def interval_violation_rates(schedule, trace: Trace) -> list[float]:
    """The plan replayed as planned in the product simulator: per interval, the share of
    its requests over the SLO."""
    arrivals = trace.request_arrivals(0)
    result = simulate(arrivals, ScheduleController(schedule), [MODEL], SimConfig(slo_ms=schedule.slo_ms, cold_start_s=schedule.cold_start_s))
    minute = (arrivals // 60.0).astype(int)
    return [float(np.mean(result.latencies_ms[minute == i] > schedule.slo_ms)) for i in np.unique(minute)]


@given(rates_rps=rates, cold_start_s=cold)
@example(rates_rps=[18, 42], cold_start_s=30.0)  # the replicas booted for the second minute serve the first
@example(rates_rps=[0, 0, 0, 41, 43], cold_start_s=150.0)  # booting once beats growing for two minutes
@example(rates_rps=[35, 45, 20, 26, 17, 25], cold_start_s=0.0)  # a minute at capacity hands on its queue
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_oracle_holds_in_simulation_and_is_the_cheapest_plan_that_does(rates_rps: list[int], cold_start_s: float) -> None:
    """Every interval of the oracle's plan keeps p99 within the SLO when the simulator
    replays it with cold starts and resizes: 1 % of an interval's requests may exceed the
    SLO, plus those of the first second (a resize asked for at the interval's start lands
    a resize delay later) and one for the queue a transition carries over. No plan that
    holds in every interval costs less."""
    trace = trace_of(rates_rps)
    results = {p: plan(trace, STAGES, config(cold_start_s), p) for p in POLICIES}
    oracle = results["oracle"].schedule
    allowed = [0.01 + (r + 1) / max(1, 60 * r) for r in rates_rps]
    assert all(rate <= limit for rate, limit in zip(interval_violation_rates(oracle, trace), allowed))
    for policy, result in results.items():
        if max(interval_violation_rates(result.schedule, trace), default=0.0) <= 0.01:
            assert oracle.core_seconds() <= result.schedule.core_seconds() + 1e-9, policy


@pytest.mark.xfail(strict=True, reason=(
    "issue 10, open: on [18, 18, 43] rps with a 30 s cold start the oracle's plan (4 cores in the first minute: "
    "its own allocation plus the replicas booted ahead for the later ones, then 3) costs 600 core-s where static's "
    "constant 3 cores (540) also holds: the oracle never tries the later minutes' allocation from the start"))
def test_oracle_is_no_dearer_than_a_constant_plan_that_holds() -> None:
    trace = trace_of([18, 18, 43])
    oracle, static = (plan(trace, STAGES, config(30.0), p).schedule for p in ("oracle", "static"))
    assert max(interval_violation_rates(static, trace)) <= 0.01  # static holds, so it bounds the floor
    assert oracle.core_seconds() <= static.core_seconds()


@given(rates_rps=rates, factor=st.floats(1.0, 3.0))
@settings(max_examples=25, deadline=None)
def test_more_load_never_costs_less(rates_rps: list[int], factor: float) -> None:
    low = plan(trace_of(rates_rps), STAGES, config(30.0), "static").schedule.core_seconds()
    high_rates = [int(np.ceil(r * factor)) for r in rates_rps]
    high = plan(trace_of(high_rates), STAGES, config(30.0), "static").schedule.core_seconds()
    assert low <= high
