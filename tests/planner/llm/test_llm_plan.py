"""LLM planning on the bundled Azure LLM trace: the load and token-mix windows against plain
computations, capacities checked by simulation, the policies' rules on scripted intervals,
what online policies may see, and cost per million tokens against a hand computation."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from themis.planner.errors import PlanInputError
from themis.planner.llm.capacity import CapacityCache, probe_requests
from themis.planner.llm.iteration import fit_iteration_model, load_iteration_models
from themis.planner.llm.plan import LlmPlanConfig, LlmStep, llm_demand, plan_llm, plan_slots, window_peaks
from themis.planner.llm.policies import horizontal, oracle, static, themis
from themis.planner.llm.policy import LlmPolicySetup, LlmStepContext, TypeOption
from themis.planner.llm.published import published_profile
from themis.planner.llm.service import LlmSlo, ServerConfig
from themis.planner.llm.simulate import ReplicaType, Slot, simulate_llm
from themis.planner.model.cost import Prices
from themis.planner.traffic.loading import load_trace

TINY_PROFILE = Path(__file__).parents[2] / "data" / "profiles" / "tiny_llm_cpu.parquet"
SLO = LlmSlo(ttft_ms=8000.0, tpot_ms=200.0)
CPU_SERVER = ServerConfig(kv_capacity_tokens=131_072, max_num_batched_tokens=256)


@pytest.fixture(scope="module")
def trace(llm_trace_path):
    return load_trace(llm_trace_path).window(0.0, 1200.0)


@pytest.fixture(scope="module")
def tiny_types() -> list[ReplicaType]:
    return [ReplicaType(m, CPU_SERVER) for m in load_iteration_models(TINY_PROFILE)]


@pytest.fixture(scope="module")
def gpu_types() -> list[ReplicaType]:
    out = []
    for gpu in ("a100", "h100"):
        frame = published_profile("Llama-2-7b-hf", gpu)
        out.append(ReplicaType(fit_iteration_model(frame), ServerConfig(kv_capacity_tokens=frame.attrs["llm"]["kv_capacity_tokens"])))
    return out


def config(**changes) -> LlmPlanConfig:
    base = LlmPlanConfig(slo=SLO, prices=Prices(0.05), capacity_requests=500, mix_window_s=600.0)
    return replace(base, **changes)


@pytest.fixture(scope="module")
def tiny_plans(trace, tiny_types):
    cache = CapacityCache()
    return {p: plan_llm(trace, tiny_types, config(), p, cache=cache) for p in ("themis", "horizontal", "static", "oracle")}, cache


# --------------------------------------------------------------------- demand


def test_window_peaks_equal_a_plain_sliding_count(trace):
    arrivals = trace.arrivals_s
    peaks = window_peaks(arrivals, trace.duration_s, 60.0, 8.0)
    seconds = np.floor(arrivals).astype(int)
    for i in range(peaks.size):
        best = 0
        for end in range(i * 60, (i + 1) * 60):  # windows of 8 whole seconds ending at each second of the interval
            best = max(best, int(((seconds > end - 8) & (seconds <= end)).sum()))
        assert peaks[i] == pytest.approx(best / 8.0)


def test_online_mix_is_the_previous_window_offline_its_own(trace):
    demand = llm_demand(trace, config(mix_window_s=300.0))
    assert len(demand.blocks) == 4 and demand.block_of_step.tolist()[:6] == [0, 0, 0, 0, 0, 1]
    assert [demand.known_block(i, offline=False) for i in (0, 4, 5, 12)] == [0, 0, 0, 1]
    assert [demand.known_block(i, offline=True) for i in (0, 5, 12)] == [0, 1, 2]
    inside = (trace.arrivals_s >= 300.0) & (trace.arrivals_s < 600.0)
    np.testing.assert_array_equal(demand.blocks[1].mix.prompt_tokens, np.maximum(trace.prompt_tokens[inside], 1))
    assert demand.forecast_rps[0] == demand.peaks_rps[0] and demand.tokens == int(trace.prompt_tokens.sum() + trace.output_tokens.sum())


def test_a_thin_window_takes_the_latest_requests_before_its_end(trace):
    part = trace.window(0.0, 600.0)
    demand = llm_demand(part, config(interval_s=10.0, mix_window_s=10.0))
    for block in demand.blocks:
        assert block.mix.prompt_tokens.size >= 100
        end = max(block.t_end_s, part.arrivals_s[99] + 1e-9)  # before the 100th request, the first 100
        before = np.flatnonzero(part.arrivals_s < end)[-100:]
        np.testing.assert_array_equal(block.mix.prompt_tokens[-100:], np.maximum(part.prompt_tokens[before], 1))


# --------------------------------------------------------------------- capacity and plans


def test_capacities_of_a_plan_meet_the_slo_in_simulation_and_ten_percent_more_misses(tiny_plans, tiny_types, trace):
    plans, _ = tiny_plans
    demand = llm_demand(trace, config())
    row = next(r for r in plans["oracle"].capacities if r["type"] == 0 and r["block"] == 1)
    mix = demand.blocks[1].mix
    ok = simulate_llm(probe_requests(mix, row["capacity_rps"], 500), tiny_types[0].model, CPU_SERVER)
    over = simulate_llm(probe_requests(mix, 1.1 * row["capacity_rps"], 500), tiny_types[0].model, CPU_SERVER)
    assert ok.slo_met(SLO) and not over.slo_met(SLO)


def test_every_planned_interval_carries_its_planning_load(tiny_plans):
    plans, cache = tiny_plans
    for name, plan in plans.items():
        assert plan.feasible, plan.reason
        for i, step in enumerate(plan.steps):
            assert step.capacity_rps + 1e-9 >= step.load_rps or i in plan.short_steps, (name, i)
    assert cache.hits > 0  # the policies asked for the same (type, mix) capacities


def test_oracle_is_the_cheapest_and_static_never_changes(tiny_plans):
    plans, _ = tiny_plans
    costs = {name: plan.cost() for name, plan in plans.items()}
    assert costs["oracle"] <= min(costs.values()) + 1e-9
    assert len({s.replicas for s in plans["static"].steps}) == 1 and plans["static"].scale_actions() == 0
    assert plans["oracle"].estimated_violation_intervals == 0  # it asks a cold start ahead


def test_cost_per_million_tokens_is_the_hand_computation(tiny_plans, trace):
    plan = tiny_plans[0]["static"]
    (replicas,) = {s.replicas for s in plan.steps}
    cores = sum(r * t.model.cores for r, t in zip(replicas, plan.types))
    hours = 20 * 60.0 / 3600.0  # 20 one-minute intervals
    money = cores * hours * 0.05
    tokens = int(trace.prompt_tokens.sum() + trace.output_tokens.sum())
    totals = plan.to_dict()["totals"]
    assert totals["cost"] == pytest.approx(money)
    assert totals["cost_per_mtok"] == pytest.approx(money / (tokens / 1e6))
    assert totals["unit_hours_per_mtok"]["cpu"] == pytest.approx(cores * hours / (tokens / 1e6))


def test_online_plans_do_not_depend_on_traffic_after_their_interval(trace, tiny_types):
    cut = 600.0
    keep = (trace.arrivals_s < cut) | (np.arange(trace.arrivals_s.size) % 3 == 0)  # two thirds of the later requests gone
    thinned = replace(trace, arrivals_s=trace.arrivals_s[keep], prompt_tokens=trace.prompt_tokens[keep],
                      output_tokens=trace.output_tokens[keep])
    first = plan_llm(trace, tiny_types[:1], config(forecast="last"), "themis")
    second = plan_llm(thinned, tiny_types[:1], config(forecast="last"), "themis")
    steps = int(cut // 60.0)
    assert [s.replicas for s in first.steps[:steps + 1]] == [s.replicas for s in second.steps[:steps + 1]]
    assert [s.replicas for s in first.steps] != [s.replicas for s in second.steps]


def test_published_gpu_types_are_chosen_by_price(trace, gpu_types):
    cheap_h100 = plan_llm(trace, gpu_types, config(slo=LlmSlo(2000.0, 150.0), prices=Prices(0.0, {"a100": 1.8, "h100": 3.0})), "oracle")
    pricey_h100 = plan_llm(trace, gpu_types, config(slo=LlmSlo(2000.0, 150.0), prices=Prices(0.0, {"a100": 1.8, "h100": 30.0})), "oracle")
    assert {k for s in pricey_h100.steps for k, r in enumerate(s.replicas) if r} == {0}
    # an H100 carries ~3.6 A100s for 1.7x the price: it runs whenever the load needs more than one A100 (the oracle
    # may hold an A100 while an H100 boots for the next interval, or the other way round)
    assert all(step.replicas[0] <= 1 for step in cheap_h100.steps)
    assert any(step.replicas[1] for step in cheap_h100.steps)
    assert set(cheap_h100.unit_seconds_by_device()) == {"NVIDIA A100-SXM4-80GB", "NVIDIA H100 80GB HBM3"}
    assert cheap_h100.to_dict()["totals"]["gpu_seconds"] > 0


def test_an_slo_no_type_can_meet_is_out_of_reach_naming_the_best(trace, tiny_types):
    plan = plan_llm(trace, tiny_types, config(slo=LlmSlo(500.0, 50.0)), "themis")
    assert not plan.feasible and plan.exit_code == 1
    assert "best reachable p99 TTFT" in plan.reason and "cpu x1" in plan.reason


def test_bad_inputs_are_input_errors(trace, tiny_types, functions_2021_path):
    with pytest.raises(PlanInputError, match="no token counts"):
        plan_llm(load_trace(functions_2021_path), tiny_types, config())
    with pytest.raises(PlanInputError, match="unknown policy"):
        plan_llm(trace, tiny_types, config(), "vertical")
    short = [ReplicaType(tiny_types[0].model, ServerConfig(kv_capacity_tokens=2048))]
    with pytest.raises(PlanInputError, match="max_model_len"):
        plan_llm(trace, short, config())


# --------------------------------------------------------------------- transitions and policies


def test_plan_slots_boot_new_replicas_and_remove_the_newest():
    steps = [LlmStep(60.0 * i, 60.0 * (i + 1), 0.0, 0.0, r, 0.0, 0) for i, r in enumerate([(2, 0), (3, 1), (1, 1), (1, 0)])]
    assert plan_slots(steps, 30.0) == [
        Slot(0, 0.0, 0.0), Slot(0, 0.0, 0.0, 120.0), Slot(0, 60.0, 90.0, 120.0), Slot(1, 60.0, 90.0, 180.0),
    ]


def _options(*capacities_and_costs) -> tuple[TypeOption, ...]:
    return tuple(TypeOption(c, p) for c, p in capacities_and_costs)


def ctx(step=0, load=10.0, held=None, observed=0.0, options=None, current=None, future=None, cold_steps=1) -> LlmStepContext:
    return LlmStepContext(step, load, load if held is None else held, observed, options or _options((1.0, 1.0), (4.0, 3.0)), 64,
                          cold_steps, 0.1, current, future)


def test_themis_keeps_the_old_type_serving_while_the_new_one_boots():
    cheap_second = _options((1.0, 1.0), (4.0, 2.0))  # type 1: 4 rps for 2 a replica-hour, half the cost per request
    replicas, state = themis.decide(ctx(options=_options((1.0, 1.0), (4.0, 5.0))), themis.initial_state(None))
    assert replicas == (10, 0)
    replicas, state = themis.decide(ctx(step=1, options=cheap_second, current=replicas), state)
    assert replicas == (10, 3)  # type 1 boots; type 0 keeps serving for a cold start
    replicas, state = themis.decide(ctx(step=2, options=cheap_second, current=replicas), state)
    assert replicas == (0, 3)


def test_themis_stays_for_a_small_saving_and_reacts_to_an_observed_peak():
    replicas, state = themis.decide(ctx(options=_options((1.0, 1.0), (4.0, 5.0))), themis.initial_state(None))
    nearly = _options((1.0, 1.0), (4.0, 3.8))  # 5% cheaper: not worth a cold start
    replicas, state = themis.decide(ctx(step=1, options=nearly, current=replicas), state)
    assert replicas == (10, 0)
    replicas, _ = themis.decide(ctx(step=2, load=10.0, observed=20.0, options=nearly, current=replicas), state)
    assert replicas == (20, 0)


def test_horizontal_picks_the_type_cheapest_over_the_trace():
    setup = LlmPolicySetup(np.array([1.0, 30.0]), np.array([1.0, 30.0]), np.zeros(2),
                           (_options((1.0, 1.0), (40.0, 2.0)),) * 2, 64, 1, 0.1)
    assert horizontal.initial_state(setup) == 1  # 1 + 30 replica-hours of type 0 against 2 + 2 of type 1
    replicas, _ = horizontal.decide(ctx(load=50.0, held=90.0, options=_options((1.0, 1.0), (40.0, 2.0))), 1)
    assert replicas == (0, 3)  # sized for the load held over the scale-down window


def test_static_and_oracle_see_the_future():
    opts = _options((1.0, 1.0), (4.0, 5.0))
    future = ((2.0, opts), (30.0, opts), (3.0, opts))
    chosen, _ = static.decide(ctx(options=opts, future=future), None)
    assert chosen == (30, 0)
    replicas, _ = oracle.decide(ctx(options=opts, future=future, cold_steps=1), None)
    assert replicas == (30, 0)  # a cold start ahead of the peak
    replicas, _ = oracle.decide(ctx(future=future[2:], cold_steps=1), None)
    assert replicas == (3, 0)


def test_no_type_carrying_the_load_runs_the_strongest_at_the_limit():
    replicas, _ = static.decide(ctx(future=((1e6, _options((1.0, 1.0), (4.0, 5.0))),)), None)
    assert replicas == (0, 64) and math.isfinite(sum(replicas))
