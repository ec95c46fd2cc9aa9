"""Policies as scripted scenarios, stepped interval by interval: a load step (surge) on
a trace built from a script, the golden resnet18 profile, forecasts given explicitly."""

from __future__ import annotations

import numpy as np
import pytest
from support.plan_support import golden_model

from themis.planner.model.config import PlanConfig
from themis.planner.model.serving import Group, Stage, StageAllocation
from themis.planner.optimise.plan import plan
from themis.planner.optimise.replicas import ReplicaTracker
from themis.planner.traffic.trace import Trace

INTERVAL_S = 60.0


def scripted_trace(rates_rps: list[float]) -> Trace:
    """One rate per minute, constant inside the minute (counts per second)."""
    counts = np.repeat(np.array(rates_rps, dtype=float), int(INTERVAL_S)).astype(np.int64)
    return Trace(name="scripted", source_format="script", start=None, interval_s=1.0, counts=counts)


def run(policy: str, rates_rps: list[float], **overrides):
    cfg = dict(slo_ms=500.0, interval_s=INTERVAL_S, node_cores=16, cold_start_s=90.0, scale_down_delay_s=180.0)
    cfg.update(overrides)
    model = golden_model("resnet18")
    forecast = np.r_[np.nan, rates_rps[:-1]]  # "last value": the surge is seen one interval late
    return plan(scripted_trace(rates_rps), [(Stage("classify", "resnet18"), model)], PlanConfig(**cfg), policy, forecast_rps=forecast)


SURGE = [4.0] * 5 + [30.0] * 8 + [4.0] * 8


def test_replicas_keep_the_readiest_and_boot_the_new() -> None:
    tracker = ReplicaTracker(stages=1, cold_steps=2)
    alloc = lambda *groups: (StageAllocation(tuple(groups), batch=1),)  # noqa: E731
    tracker.request(0, alloc(Group(2, 1)))
    assert tracker.serving(0) == ((Group(2, 1),),)  # the opening allocation serves at once
    tracker.request(4, alloc(Group(2, 8), Group(3, 1)))
    assert tracker.serving(4) == ((Group(2, 8),),)  # running ones resized at once
    assert tracker.serving(6) == ((Group(2, 8), Group(3, 1)),)  # the new ones after a cold start
    tracker.request(7, alloc(Group(1, 4)))
    (stage,) = tracker.stages
    assert [(r.id, r.cores) for r in stage.replicas] == [(0, 4)]  # the oldest stays, resized; the newest go


SURGE_60 = [4.0] * 5 + [60.0] * 8 + [4.0] * 8


def test_themis_plans_one_efficient_group_per_step_and_records_the_surge() -> None:
    """The plan never holds grown replicas for an interval: every step is H, one group at
    its size; the step that sees the jump (one interval late with a last-value forecast)
    is recorded as a surge step and boots H's replicas."""
    result = run("themis", SURGE_60)
    steps = [s.stages[0] for s in result.schedule.steps]
    assert all(len(a.groups) == 1 for a in steps)
    assert result.schedule.surge_steps and result.schedule.surge_steps[0] == 6
    assert steps[6].replicas > steps[5].replicas


def test_themis_runtime_absorbs_the_surge_the_plan_sees_late() -> None:
    """Replayed as planned, the jump overruns one replica for two intervals (one to see it,
    a cold start to boot); the runtime controller grows the running replica within a
    second and the violations fall by more than 10x, for a few core-minutes more."""
    from themis.planner.model.config import SimConfig
    from themis.planner.simulation.controllers.schedule import ScheduleController
    from themis.planner.simulation.driver import simulate

    model = golden_model("resnet18")
    schedule = run("themis", SURGE_60).schedule
    arrivals = scripted_trace(SURGE_60).request_arrivals(0)
    config = SimConfig(slo_ms=500.0, cold_start_s=90.0, resize_s=1.0)
    with_runtime = simulate(arrivals, schedule, [model], config)
    as_planned = simulate(arrivals, ScheduleController(schedule), [model], config)
    assert with_runtime.violations * 10 <= as_planned.violations
    assert with_runtime.core_seconds <= as_planned.core_seconds * 1.6


def test_themis_holds_less_than_horizontal_when_its_vertical_reserve_covers_a_return() -> None:
    """Lean horizontal, fast vertical: with an SLO long next to a check and a resize delay,
    a step back up to the load of the scale-down window builds a queue that drains in time
    once the replicas have grown, so themis releases replicas before `horizontal` does."""
    themis = [s.stages[0].replicas for s in run("themis", SURGE_60, slo_ms=1500.0).schedule.steps]
    horizontal = [s.stages[0].replicas for s in run("horizontal", SURGE_60, slo_ms=1500.0).schedule.steps]
    assert sum(themis) < sum(horizontal)
    assert all(t <= h for t, h in zip(themis, horizontal))
    assert themis[15] < horizontal[15]  # the load fell at step 13; horizontal still holds


def test_horizontal_releases_replicas_only_after_the_hysteresis_window() -> None:
    result = run("horizontal", SURGE, horizontal_cores=1)
    replicas = [s.stages[0].replicas for s in result.schedule.steps]
    assert all(g.cores == 1 for s in result.schedule.steps for g in s.stages[0].groups)
    high = max(replicas)
    last_high_forecast = 13  # the forecast of step 13 is the last 30 rps interval
    assert replicas[last_high_forecast + 2] == high  # still held (180 s window)
    assert replicas[-1] < high


def test_vertical_keeps_its_replicas_and_resizes() -> None:
    sized = run("vertical", SURGE).schedule.steps
    assert len({s.stages[0].replicas for s in sized}) == 1  # default: fewest carrying the peak
    steps = run("vertical", SURGE, vertical_replicas=1).schedule.steps
    assert {s.stages[0].replicas for s in steps} == {1}
    cores = [s.stages[0].groups[0].cores for s in steps]
    assert cores[0] < max(cores) and cores[-1] < max(cores)  # up for the surge, down after


def test_static_is_one_allocation_sized_for_the_peak() -> None:
    result = run("static", SURGE)
    allocations = {s.stages[0].describe() for s in result.schedule.steps}
    assert len(allocations) == 1
    assert result.schedule.steps[0].stages[0].capacity_rps >= 30.0
    assert result.schedule.estimated_violation_intervals == 0


@pytest.mark.parametrize("cold_start_s", [0.0, 60.0, 150.0])
def test_oracle_requests_replicas_a_cold_start_ahead(cold_start_s: float) -> None:
    result = run("oracle", SURGE_60, cold_start_s=cold_start_s)
    assert result.schedule.estimated_violation_intervals == 0
    replicas = [s.stages[0].replicas for s in result.schedule.steps]
    ahead = int(np.ceil(cold_start_s / INTERVAL_S))
    first_high = 5
    assert replicas[first_high - ahead] == max(replicas)
    if ahead:
        assert replicas[first_high - ahead - 1] < max(replicas)


def test_the_cli_names_every_registered_policy() -> None:
    from themis.planner import choices
    from themis.planner.gates.compare import RUNTIME_POLICIES
    from themis.planner.policies import POLICIES

    assert choices.PLANNED_POLICIES == tuple(POLICIES) and all(p.name == name for name, p in POLICIES.items())
    assert sorted(choices.POLICIES) == sorted([*POLICIES, *RUNTIME_POLICIES])
