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
from themis.planner.optimise.solver import Restriction
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


def test_themis_absorbs_a_surge_vertically_then_repacks_horizontally() -> None:
    """SLO 1.5 s: with the golden resnet18 profile (2-core cells measured under contention)
    an in-place resize meets the SLO for this surge only from about that SLO on."""
    result = run("themis", SURGE, slo_ms=1500.0)
    steps = result.schedule.steps
    surge = result.schedule.surge_steps
    assert surge and surge[0] == 6  # the forecast sees the jump one interval late
    before, at = steps[5].stages[0], steps[6].stages[0]
    running, booting = at.groups
    assert running.replicas == before.replicas  # replicas frozen, resized in place
    assert booting.replicas > 0  # the horizontal optimum's extra replicas start now
    # the vertical part is the vertical DP: cheapest cores/batch with these replicas
    from themis.planner.optimise.solver import IntervalSolver
    from themis.planner.optimise.space import StageSpace

    cfg = PlanConfig(slo_ms=1500.0, interval_s=INTERVAL_S, node_cores=16)
    solver = IntervalSolver([StageSpace(result.schedule.stages[0], [golden_model("resnet18")], cfg)], cfg)
    choice = solver.solve(30.0, [Restriction(replicas=before.replicas)])
    assert running.cores == solver.spaces[0].k_cores[choice[0][0]] and at.batch == solver.spaces[0].k_batch[choice[0][0]]
    # two cold-start intervals later the new replicas serve: one group, the horizontal optimum
    after = steps[6 + 2].stages[0]
    assert len(after.groups) == 1 and after.replicas == running.replicas + booting.replicas
    assert len(steps[-1].stages[0].groups) == 1


def test_themis_only_boots_when_no_resize_meets_the_slo() -> None:
    # replicas already run at the node's size (2 cores), so no in-place resize can help
    result = run("themis", SURGE, slo_ms=500.0, node_cores=2, cores=(2,))
    assert result.schedule.surge_steps == ()
    before, at = result.schedule.steps[5].stages[0], result.schedule.steps[6].stages[0]
    assert at.groups[0].cores == before.groups[0].cores and at.batch == before.batch  # running ones untouched
    assert at.replicas > before.replicas  # the missing replicas boot


def test_themis_violates_less_than_horizontal_during_the_surge() -> None:
    themis, horizontal = run("themis", SURGE, slo_ms=1500.0), run("horizontal", SURGE, slo_ms=1500.0)
    assert themis.schedule.estimated_violation_intervals < horizontal.schedule.estimated_violation_intervals


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
    result = run("oracle", SURGE, cold_start_s=cold_start_s)
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
