"""`compare` on a real trace with a real profile: every policy sees the same requests."""

from __future__ import annotations

import numpy as np
import pytest
from support.plan_support import PROFILES as GOLDEN_PROFILES

from themis.common import SCHEMA_VERSION
from themis.planner.errors import PlanInputError
from themis.planner.gates.compare import POLICIES, compare
from themis.planner.model.config import PlanConfig
from themis.planner.model.latency import load_latency_models
from themis.planner.model.serving import Stage
from themis.planner.traffic.loading import load_trace


@pytest.fixture(scope="module")
def comparison(llm_trace_path):
    trace = load_trace(llm_trace_path).window(0.0, 900.0).scaled(3.0, seed=1)
    model = load_latency_models([GOLDEN_PROFILES / "resnet18_cpu.parquet"])["resnet18"]
    config = PlanConfig(slo_ms=300.0, cold_start_s=30.0, node_cores=8)
    return trace, compare(trace, [(Stage("resnet18", "resnet18"), model)], config)


def test_every_policy_serves_the_same_requests(comparison):
    trace, result = comparison
    assert [o.policy for o in result.outcomes] == list(POLICIES)
    first = result.outcomes[0].result.arrivals_s
    for o in result.outcomes:
        assert o.result.requests == trace.requests
        np.testing.assert_array_equal(o.result.arrivals_s, first)


def test_json_carries_the_spec_keys_and_ratios(comparison):
    _, result = comparison
    data = result.to_dict()
    assert data["schema_version"] == SCHEMA_VERSION and data["kind"] == "comparison"
    assert "trace_start" in data
    for row in data["policies"].values():
        for key in ("requests", "violations", "violation_rate", "p50_ms", "p95_ms", "p99_ms", "core_seconds", "scale_actions"):
            assert key in row
    themis = data["policies"]["themis"]
    for row in data["policies"].values():
        assert row["ratio_to_themis"]["core_seconds"] == pytest.approx(row["core_seconds"] / themis["core_seconds"])
    frame = result.to_frame()
    assert list(frame["policy"]) == list(POLICIES)


def test_replayed_horizontal_plan_costs_what_it_planned(comparison):
    # no resizes in a horizontal plan: the simulated core-seconds are the plan's, up to
    # removed replicas finishing their last batch
    _, result = comparison
    horizontal = result.outcome("horizontal")
    assert horizontal.result.core_seconds == pytest.approx(horizontal.schedule.core_seconds(), rel=1e-3)
    static = result.outcome("static").result
    assert static.scale_actions == 0
    oracle = result.outcome("oracle").result
    assert oracle.core_seconds <= static.core_seconds + 1e-6


def test_unknown_policy_is_bad_input(llm_trace_path):
    trace = load_trace(llm_trace_path).window(0.0, 120.0)
    model = load_latency_models([GOLDEN_PROFILES / "resnet18_cpu.parquet"])["resnet18"]
    with pytest.raises(PlanInputError, match="unknown policy"):
        compare(trace, [(Stage("r", "resnet18"), model)], PlanConfig(slo_ms=300.0), ("themis", "magic"))


def test_a_gpu_stage_costs_its_gpu_hours_in_the_plan_and_in_simulation(llm_trace_path):
    """FAKE GPU: no GPU exists here, so the real 1-core cells relabelled as a GPU stand in
    for a GPU profile. The plan and the simulated run must price it per GPU-hour alike."""
    from themis.planner.model.latency import LatencyModel
    from themis.profiler.table import read_profile

    frame = read_profile(GOLDEN_PROFILES / "resnet18_cpu.parquet")
    gpu = frame[frame["cores"] == 1].assign(device_kind="cuda", device_name="FAKE-GPU A100-SXM4-80GB")
    model = LatencyModel("resnet18", "cuda", "FAKE-GPU A100-SXM4-80GB").fit(gpu)
    trace = load_trace(llm_trace_path).window(0.0, 600.0)
    config = PlanConfig(slo_ms=400.0, price_per_gpu_hour={"a100": 2.5})
    outcome = compare(trace, [(Stage("resnet18", "resnet18"), [model])], config, ("static",)).outcomes[0]
    planned, simulated = outcome.schedule, outcome.result
    gpu_hours = planned.core_seconds() / 3600.0
    assert planned.cost() == pytest.approx(2.5 * gpu_hours) and gpu_hours > 0
    assert simulated.cost == pytest.approx(planned.cost(), rel=1e-9)  # one replica set, held throughout


def test_a_ratio_to_zero_is_undefined_not_one(comparison):
    _, result = comparison
    data = result.to_dict()
    zero = [p for p, row in data["policies"].items() if row["violations"] == 0]
    if data["policies"]["themis"]["violations"] == 0:
        assert all(data["policies"][p]["ratio_to_themis"]["violations"] is None for p in data["policies"])
    else:
        assert all(data["policies"][p]["ratio_to_themis"]["violations"] == 0.0 for p in zero)
def test_a_warm_up_opens_online_policies_at_its_peak_and_is_not_counted(llm_trace_path):
    trace = load_trace(llm_trace_path).window(0.0, 900.0).scaled(3.0, seed=1)
    model = load_latency_models([GOLDEN_PROFILES / "resnet18_cpu.parquet"])["resnet18"]
    config = PlanConfig(slo_ms=300.0, cold_start_s=30.0, node_cores=8, warmup_s=200.0)
    result = compare(trace, [(Stage("resnet18", "resnet18"), model)], config, ("themis", "horizontal", "hpa"))
    peaks = trace.peak_rates(60.0)
    for policy in ("themis", "horizontal"):  # opened for the peak of [0, 200 s): intervals 0 to 3
        assert result.outcome(policy).schedule.steps[0].forecast_rps == peaks[:4].max() > peaks[0]
    horizontal = result.outcome("horizontal")
    opening = horizontal.schedule.steps[0].stages[0]
    assert result.outcome("hpa").result.timeline[0]["replicas"] == opening.replicas
    arrivals = horizontal.result.arrivals_s
    for outcome in result.outcomes:
        assert outcome.result.requests == np.count_nonzero(arrivals >= 200.0) < arrivals.size
    # a replayed horizontal plan holds what it planned: core-seconds from 200 s on
    held_s = sum(a.total_cores * (step.t_end_s - max(step.t_start_s, 200.0))
                 for step in horizontal.schedule.steps if step.t_end_s > 200.0 for a in step.stages)
    assert horizontal.result.core_seconds == pytest.approx(held_s, rel=1e-3)
    assert result.to_dict()["warmup_s"] == 200.0
    with pytest.raises(PlanInputError, match="--warmup"):
        compare(trace, [(Stage("resnet18", "resnet18"), model)], PlanConfig(slo_ms=300.0, warmup_s=900.0), ("static",))
