"""Comparing policies on an LLM service: every plan replayed through the fleet simulator with
its cold starts, the queue-metric HPA in closed loop, cost per million tokens served and the
check gate, on a window of the bundled Azure LLM trace."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from themis.common.errors import InputError
from themis.planner.gates.check import CapacityBudget
from themis.planner.llm.check import check_llm_capacity
from themis.planner.llm.compare import LLM_COMPARE_POLICIES, compare_llm, run_hpa
from themis.planner.llm.iteration import fit_iteration_model
from themis.planner.llm.plan import LlmPlanConfig, plan_llm, trace_requests
from themis.planner.llm.published import published_profile
from themis.planner.llm.service import LlmSlo, ServerConfig
from themis.planner.llm.simulate import ReplicaType, simulate_fleet
from themis.planner.model.cost import Prices
from themis.planner.simulation.controllers.hpa import HpaConfig
from themis.planner.traffic.loading import load_trace

SLO = LlmSlo(ttft_ms=2000.0, tpot_ms=150.0)
PRICES = Prices(0.0, {"a100": 1.8, "h100": 3.0})


@pytest.fixture(scope="module")
def trace(llm_trace_path):
    return load_trace(llm_trace_path).window(0.0, 900.0)


@pytest.fixture(scope="module")
def types() -> list[ReplicaType]:
    out = []
    for gpu in ("a100", "h100"):
        frame = published_profile("Llama-2-7b-hf", gpu)
        out.append(ReplicaType(fit_iteration_model(frame), ServerConfig(kv_capacity_tokens=frame.attrs["llm"]["kv_capacity_tokens"])))
    return out


def config(**changes) -> LlmPlanConfig:
    return replace(LlmPlanConfig(slo=SLO, prices=PRICES, capacity_requests=500, mix_window_s=300.0), **changes)


@pytest.fixture(scope="module")
def comparison(trace, types):
    return compare_llm(trace, types, config())


def test_every_policy_is_replayed_on_the_same_requests(comparison, trace):
    data = comparison.to_dict()
    assert data["kind"] == "llm_comparison" and list(data["policies"]) == list(LLM_COMPARE_POLICIES)
    for row in data["policies"].values():
        assert row["requests"] == trace.requests and len(row["timeline"]) == 15
        assert sum(r["requests"] for r in row["timeline"]) == trace.requests
        assert row["served"] + row["unserved"] == trace.requests
    assert data["policies"]["themis"]["ratio_to_themis"]["cost"] == pytest.approx(1.0)


def test_a_plan_replayed_serves_on_its_own_schedule(comparison, trace, types):
    outcome = next(o for o in comparison.outcomes if o.policy == "oracle")
    assert outcome.slots == outcome.plan.slots()
    again = simulate_fleet(trace_requests(trace), types, outcome.slots)
    np.testing.assert_array_equal(again.first_token_s, outcome.result.first_token_s)
    booted = [s for s in outcome.slots if s.ready_s > 0]
    assert booted and all(s.ready_s == pytest.approx(s.requested_s + 30.0) for s in booted)


def test_the_offline_plans_meet_the_slo_and_the_oracle_costs_least(comparison):
    rows = comparison.to_dict()["policies"]
    for name in ("static", "oracle"):
        assert rows[name]["violation_rate"] <= 0.01, name
    assert rows["oracle"]["cost"] <= min(r["cost"] for n, r in rows.items() if n != "hpa") + 1e-9


def test_cost_per_million_tokens_served_is_the_hand_computation(comparison, types):
    outcome = next(o for o in comparison.outcomes if o.policy == "static")
    row = comparison.to_dict()["policies"]["static"]
    (replicas,) = {s.replicas for s in outcome.plan.steps}
    gpu_hours = {t.device: r * 900.0 / 3600.0 for t, r in zip(types, replicas) if r}  # never changes: held the whole 15 minutes
    money = sum(hours * (1.8 if "A100" in device else 3.0) for device, hours in gpu_hours.items())
    served = outcome.result.served
    tokens = int(outcome.result.requests.prompt_tokens[served].sum() + outcome.result.requests.output_tokens[served].sum())
    assert row["cost"] == pytest.approx(money)
    assert row["tokens_served"] == tokens and row["cost_per_mtok"] == pytest.approx(money / tokens * 1e6)


def test_hpa_follows_the_waiting_requests_and_replays_identically(trace, types):
    opening = plan_llm(trace, types[:1], config(), "horizontal")
    requests = trace_requests(trace)
    tight = run_hpa(requests, types[:1], opening, HpaConfig(target_utilisation=0.5, metric="value", max_replicas=64), 30.0, 900.0)
    loose = run_hpa(requests, types[:1], opening, HpaConfig(target_utilisation=1e6, metric="value", max_replicas=64), 30.0, 900.0)
    assert len(tight.slots) > len(loose.slots) and tight.scale_actions > 0
    assert all(s.requested_s % 15.0 == 0 for s in tight.slots)  # decisions only at the 15 s syncs
    replay = simulate_fleet(requests, types[:1], tight.slots)
    np.testing.assert_array_equal(replay.first_token_s, tight.result.first_token_s)
    np.testing.assert_array_equal(replay.gone_s, tight.result.gone_s)


def test_check_budgets_cost_per_million_tokens(trace, types):
    found = check_llm_capacity(trace, types, config(), CapacityBudget(max_cost_per_mtok=1e6), policy="oracle")
    per_mtok = next(c for c in found if c.name == "cost_per_mtok")
    assert per_mtok.passed and per_mtok.measured > 0
    tight = check_llm_capacity(trace, types, config(), CapacityBudget(max_cost_per_mtok=per_mtok.measured * 0.9), policy="oracle")
    failed = [c.name for c in tight if not c.passed]
    assert failed == ["cost_per_mtok"] and "over by" in next(c for c in tight if not c.passed).explain()
    with pytest.raises(InputError, match="needs prices"):
        check_llm_capacity(trace, types, config(prices=Prices()), CapacityBudget(max_cost_per_mtok=1.0))


def test_unpriced_comparisons_report_capacity_per_million_tokens(trace, types):
    data = compare_llm(trace, types[1:], config(prices=Prices()), ("static",)).to_dict()
    row = data["policies"]["static"]
    assert row["cost_per_mtok"] is None and row["cost"] == 0.0
    assert row["unit_hours_per_mtok"]["NVIDIA H100 80GB HBM3"] == pytest.approx(row["gpu_seconds"] / 3600 / (row["tokens_served"] / 1e6))
    assert math.isfinite(row["ttft_p99_ms"])


def test_unknown_policy_and_bad_hpa_target(trace, types):
    with pytest.raises(InputError, match="vertical"):
        compare_llm(trace, types, config(), ("vertical",))
    with pytest.raises(InputError, match="waiting"):
        compare_llm(trace, types, config(), ("hpa",), hpa_target_waiting=0.0)


def test_the_plan_json_lists_each_intervals_replicas_by_type(comparison):
    plan = next(o for o in comparison.outcomes if o.policy == "themis").plan
    data = plan.to_dict()
    assert data["kind"] == "llm_plan" and data["schema_version"] == 1
    assert set(data) >= {"slo", "replica_types", "steps", "capacities", "mix_blocks", "totals", "feasible", "reason"}
    for step, row in zip(plan.steps, data["steps"]):
        listed = [0] * len(plan.types)
        for entry in row["replicas"]:
            listed[entry["type"]] = entry["replicas"]
        assert tuple(listed) == step.replicas
    assert [t["label"] for t in data["replica_types"]] == ["NVIDIA A100-SXM4-80GB", "NVIDIA H100 80GB HBM3"]
    assert len(plan.to_frame()) == sum(1 for s in plan.steps for r in s.replicas if r)


def test_timeline_figures_are_the_requests_of_each_interval(comparison):
    outcome = next(o for o in comparison.outcomes if o.policy == "hpa")
    result = outcome.result
    rows = outcome.timeline(SLO, 60.0, 900.0)
    arrival = result.requests.arrival_s
    busy = [i for i, row in enumerate(rows) if row["requests"] > 50][:3]
    assert len(busy) == 3
    for i in busy:
        inside = (arrival >= 60.0 * i) & (arrival < 60.0 * (i + 1))
        ttft = np.sort(result.ttft_s[inside] * 1000.0)
        assert rows[i]["requests"] == inside.sum()
        assert rows[i]["ttft_p99_ms"] == pytest.approx(ttft[math.ceil(0.99 * ttft.size) - 1])  # inverted-CDF percentile
        assert rows[i]["goodput_rps"] == pytest.approx(result.meets(SLO)[inside].sum() / 60.0)
        assert rows[i]["replicas"] == sum(1 for s in outcome.slots if s.requested_s <= 60.0 * i < s.remove_s)
