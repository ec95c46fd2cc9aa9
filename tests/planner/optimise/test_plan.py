"""`plan()` end to end on the bundled Azure LLM trace and the golden profiles: the
schedule contract, every step within its own estimate, the oracle as the cost floor,
monotone cost in load, the SLO-unreachable verdict and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.plan_support import golden_model

from themis.data import bundled_trace
from themis.planner.errors import PlanInputError
from themis.planner.model.config import PlanConfig
from themis.planner.model.serving import PLAN_SCHEMA_VERSION, Group, Schedule, Stage
from themis.planner.optimise.plan import POLICIES, plan
from themis.planner.optimise.solver import IntervalSolver
from themis.planner.optimise.space import StageSpace
from themis.planner.traffic.loading import load_trace


@pytest.fixture(scope="module")
def llm_trace():
    return load_trace(bundled_trace("azure_llm_2023_code"))


@pytest.fixture(scope="module")
def resnet18():
    return golden_model("resnet18")


def config(**overrides) -> PlanConfig:
    base = dict(slo_ms=400.0, interval_s=60.0, node_cores=16, forecast="last", cold_start_s=30.0)
    base.update(overrides)
    return PlanConfig(**base)


def one_stage(model) -> list:
    return [(Stage("classify", model.model), model)]


@pytest.fixture(scope="module")
def plans(llm_trace, resnet18):
    trace = llm_trace.scaled(2.0, seed=1)
    return {p: plan(trace, one_stage(resnet18), config(), p) for p in POLICIES}


def test_every_policy_gives_a_schedule_per_the_contract(plans, llm_trace) -> None:
    n = int(np.ceil(llm_trace.duration_s / 60.0))
    for policy, result in plans.items():
        assert result.feasible and result.exit_code == 0
        data = result.to_dict()
        assert data["schema_version"] == PLAN_SCHEMA_VERSION and data["policy"] == policy and len(data["steps"]) == n
        assert {"core_seconds", "cost", "scale_actions"} <= set(data["totals"])
        again = Schedule.from_dict(data)
        assert again.to_dict()["steps"] == data["steps"]
        assert len(result.to_frame()) == n


def test_no_step_breaks_its_own_estimate(plans) -> None:
    """Re-estimating each step's allocation at the load it was planned for: latency within
    the stored estimate and the SLO, capacity above the load (x headroom)."""
    for policy, result in plans.items():
        schedule = result.schedule
        spaces = [StageSpace(s, [golden_model(s.model)], config()) for s in schedule.stages]
        flagged = set(schedule.infeasible_steps)
        for i, step in enumerate(schedule.steps):
            for space, alloc in zip(spaces, step.stages):
                latency, capacity = space.estimate(alloc.groups, alloc.batch, alloc.device, step.forecast_rps)
                assert capacity == pytest.approx(alloc.capacity_rps)
                if i not in flagged:
                    assert latency <= alloc.est_latency_ms + 1e-9 <= schedule.slo_ms + 1e-9, (policy, i)
                    assert capacity >= step.forecast_rps


@pytest.mark.parametrize(("model_name", "scale", "cold_start_s"), [("resnet18", 1.0, 30.0), ("resnet18", 3.0, 120.0), ("small_cnn", 40.0, 60.0)])
def test_oracle_is_the_cost_floor_among_plans_that_hold_in_simulation(llm_trace, model_name, scale, cold_start_s) -> None:
    """Replayed by the simulator as planned, the oracle keeps every interval's p99 within
    the SLO on the real LLM trace, and no plan that does the same costs less."""
    from themis.planner.model.config import SimConfig
    from themis.planner.simulation.controllers.schedule import ScheduleController
    from themis.planner.simulation.driver import simulate

    model = golden_model(model_name)
    trace = llm_trace.scaled(scale, seed=2)
    slo = 400.0 if model_name == "resnet18" else 30.0
    arrivals = trace.request_arrivals(0)
    minute = (arrivals // 60.0).astype(int)

    def worst_interval(schedule) -> float:
        result = simulate(arrivals, ScheduleController(schedule), [model], SimConfig(slo_ms=slo, cold_start_s=cold_start_s))
        return max(float(np.mean(result.latencies_ms[minute == i] > slo)) for i in np.unique(minute))

    results = {p: plan(trace, one_stage(model), config(slo_ms=slo, cold_start_s=cold_start_s), p) for p in POLICIES}
    oracle = results["oracle"].schedule
    assert worst_interval(oracle) <= 0.01
    for policy, result in results.items():
        if worst_interval(result.schedule) <= 0.01:
            assert oracle.core_seconds() <= result.schedule.core_seconds() + 1e-9, policy


@given(low=st.floats(0.01, 60.0), factor=st.floats(1.0, 3.0))
@settings(max_examples=40, deadline=None)
def test_cost_never_falls_when_load_rises(resnet18, low: float, factor: float) -> None:
    cfg = config(slo_ms=300.0)
    solver = IntervalSolver([StageSpace(Stage("s", "resnet18"), [resnet18], cfg)], cfg)
    cost = []
    for load in (low, low * factor):
        choice = solver.solve(load)
        cost.append(np.inf if choice is None else float(solver.spaces[0].cost_per_hour[choice[0][0], choice[0][1] - 1]))
    assert cost[0] <= cost[1]


def test_static_cost_rises_with_the_trace_volume(llm_trace, resnet18) -> None:
    costs = [plan(llm_trace.scaled(s, seed=4), one_stage(resnet18), config(), "static").schedule.core_seconds() for s in (0.5, 1.0, 2.0, 4.0)]
    assert costs == sorted(costs)


def test_single_stage_solver_equals_brute_force_over_every_allocation(resnet18) -> None:
    cfg = config(slo_ms=350.0, max_replicas=12, cores=(1, 2, 4), batch_sizes=(1, 2, 4, 8))
    space = StageSpace(Stage("s", "resnet18"), [resnet18], cfg)
    solver = IntervalSolver([space], cfg)
    for load in (0.5, 3.0, 11.0, 27.0, 60.0):
        best = np.inf
        for k in range(space.n_candidates):
            for r in range(1, 13):
                alloc = space.allocation(k, r, solver.level_load(solver.level(load)))
                if alloc.est_latency_ms <= 350.0:
                    best = min(best, float(space.cost_per_hour[k, r - 1]))
        choice = solver.solve(load)
        got = np.inf if choice is None else float(space.cost_per_hour[choice[0][0], choice[0][1] - 1])
        assert got == best


def test_pipeline_meets_the_end_to_end_slo_and_matches_brute_force(llm_trace) -> None:
    cnn, res = golden_model("small_cnn"), golden_model("resnet18")
    cfg = config(slo_ms=500.0, max_replicas=6, cores=(1, 2), batch_sizes=(1, 4, 8), latency_units=100)
    stages = [(Stage("detect", "small_cnn"), cnn), (Stage("classify", "resnet18", visit_ratio=0.5), res)]
    result = plan(llm_trace, stages, cfg, "themis")
    assert result.feasible
    flagged = set(result.schedule.infeasible_steps)
    for i, step in enumerate(result.schedule.steps):
        if i not in flagged:
            assert sum(a.est_latency_ms for a in step.stages) <= 500.0
    solver = IntervalSolver([StageSpace(s, [m], cfg) for s, m in stages], cfg)
    from themis.planner.optimise import dp

    for load in (1.0, 5.0, 9.0):
        level_load = solver.level_load(solver.level(load))
        grids = [sp.grids([solver.level(load)], np.array([level_load * sp.stage.visit_ratio]))[0] for sp in solver.spaces]
        units = [dp.latency_units(g.ravel(), 500.0, 100) for g in grids]
        costs = [sp.cost_per_hour.ravel() for sp in solver.spaces]
        brute = min(
            (costs[0][a] + costs[1][b] for a in range(units[0].size) for b in range(units[1].size) if units[0][a] + units[1][b] <= 100),
            default=np.inf,
        )
        choice = solver.solve(load)
        got = np.inf if choice is None else sum(float(sp.cost_per_hour[k, r - 1]) for sp, (k, r) in zip(solver.spaces, choice))
        assert got == brute


def test_unreachable_slo_is_a_verdict_with_the_best_latency(llm_trace, resnet18) -> None:
    result = plan(llm_trace, one_stage(resnet18), config(slo_ms=2.0), "themis")
    assert not result.feasible and result.exit_code == 1
    assert "out of reach" in result.reason and "best reachable" in result.reason
    assert result.best_latency_ms > 2.0 and "x" in result.best_config
    assert result.to_dict()["feasible"] is False


def test_peak_beyond_all_replicas_names_the_capacity(llm_trace, resnet18) -> None:
    result = plan(llm_trace.scaled(20.0), one_stage(resnet18), config(max_replicas=2, node_cores=2), "static")
    assert not result.feasible and "exceeds the most that 2 replicas carry" in result.reason
    assert result.best_latency_ms is None or not np.isfinite(result.best_latency_ms)


def test_themis_records_a_surge_rule_per_stage(plans, resnet18) -> None:
    """The runtime controller sizes a stage from the rule alone: the stage's service times
    at every replica size up to the node, by batch, and its share of the SLO."""
    schedule = plans["themis"].schedule
    (rule,) = schedule.surge_rules
    space = StageSpace(schedule.stages[0], [resnet18], config())
    assert rule.budget_ms == schedule.slo_ms  # one stage: the whole SLO
    assert rule.cores == tuple(o.cores for o in space.options) and rule.batches == space.batches
    table = rule.service_table_ms()
    for j, option in enumerate(space.options):
        np.testing.assert_allclose(table[1:, j], option.service_ms[1 : max(space.batches) + 1])
    assert Schedule.from_dict(schedule.to_dict()).surge_rules == schedule.surge_rules


@pytest.mark.parametrize(
    ("overrides", "option"),
    [({"slo_ms": -1.0}, "--slo"), ({"percentile": 100.0}, "--percentile"), ({"headroom": 0.5}, "--headroom"), ({"cores": (32,)}, "--cores")],
)
def test_bad_options_name_the_option(llm_trace, resnet18, overrides, option) -> None:
    with pytest.raises(PlanInputError) as info:
        plan(llm_trace, one_stage(resnet18), config(**overrides), "themis")
    assert info.value.option == option


def test_unknown_policy_is_bad_input(llm_trace, resnet18) -> None:
    with pytest.raises(PlanInputError, match="unknown policy"):
        plan(llm_trace, one_stage(resnet18), config(), "hpa")


@pytest.mark.parametrize("method", ["ewma", "auto"])
def test_online_plans_use_no_look_ahead(llm_trace, resnet18, method: str) -> None:
    """The rolling forecast is made from the past only: changing the future of the trace
    leaves every earlier step's plan unchanged."""
    cut = 30 * 60.0
    full = plan(llm_trace, one_stage(resnet18), config(forecast=method), "themis").schedule
    head = plan(llm_trace.window(0, cut), one_stage(resnet18), config(forecast=method), "themis").schedule
    assert [s.stages for s in full.steps[: len(head.steps)]] == [s.stages for s in head.steps]


def test_every_policy_plans_a_pipeline_and_the_oracle_stays_the_floor(llm_trace) -> None:
    stages = [(Stage("screen", "small_cnn"), golden_model("small_cnn")), (Stage("classify", "resnet18", 0.5), golden_model("resnet18"))]
    cfg = config(slo_ms=1000.0, node_cores=4, latency_units=100)
    results = {p: plan(llm_trace.scaled(3.0, seed=6), stages, cfg, p) for p in POLICIES}
    assert results["oracle"].schedule.estimated_violation_intervals == 0
    for policy, result in results.items():
        schedule = result.schedule
        assert result.feasible
        flagged = set(schedule.infeasible_steps)
        assert all(sum(a.est_latency_ms for a in s.stages) <= 1000.0 for i, s in enumerate(schedule.steps) if i not in flagged)
        if schedule.estimated_violation_intervals == 0:
            assert results["oracle"].schedule.core_seconds() <= schedule.core_seconds(), policy


def test_plan_cost_prices_gpu_replicas_per_gpu_hour() -> None:
    """A GPU stage is priced per GPU-hour of its device, a CPU stage per core-hour."""
    from themis.planner.model.serving import Schedule, Stage, StageAllocation, Step

    cpu = StageAllocation((Group(2, 4),), batch=8, device="cpu")
    gpu = StageAllocation((Group(3, 1),), batch=8, device="NVIDIA A100-SXM4-40GB")
    schedule = Schedule(
        policy="static", slo_ms=100.0, percentile=99.0, interval_s=3600.0, trace_start=None, cold_start_s=30.0, resize_s=1.0,
        stages=(Stage("pre", "small_cnn"), Stage("main", "resnet50")), steps=[Step(0.0, 3600.0, 10.0, (cpu, gpu))],
        price_per_core_hour=0.05, price_per_gpu_hour={"a100": 2.5},
    )
    assert schedule.cost() == pytest.approx(2 * 4 * 0.05 + 3 * 2.5)
    assert Schedule.from_dict(schedule.to_dict()).cost() == pytest.approx(schedule.cost())
