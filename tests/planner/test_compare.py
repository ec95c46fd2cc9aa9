"""`compare` on a real trace with a real profile: every policy sees the same requests."""

from __future__ import annotations

from pathlib import Path

import pytest

from themis.common import SCHEMA_VERSION
from themis.planner.compare import POLICIES, compare
from themis.planner.errors import PlanInputError
from themis.planner.latency import load_latency_models
from themis.planner.plan import PlanConfig
from themis.planner.serving import Stage
from themis.planner.traces import load_trace

GOLDEN_PROFILES = Path(__file__).parents[1] / "data" / "profiles"



@pytest.fixture(scope="module")
def comparison(llm_trace_path):
    trace = load_trace(llm_trace_path).window(0.0, 900.0).scaled(3.0, seed=1)
    model = load_latency_models([GOLDEN_PROFILES / "resnet18_cpu.parquet"])["resnet18"]
    config = PlanConfig(slo_ms=300.0, cold_start_s=30.0, max_cores_per_replica=8)
    return trace, compare(trace, [(Stage("resnet18", "resnet18"), model)], config)


def test_every_policy_serves_the_same_requests(comparison):
    trace, result = comparison
    assert [o.policy for o in result.outcomes] == list(POLICIES)
    for o in result.outcomes:
        assert o.result.requests == trace.requests
        assert 0 <= o.result.violations <= o.result.requests


def test_json_carries_the_spec_keys_and_ratios(comparison):
    _, result = comparison
    data = result.to_dict()
    assert data["schema_version"] == SCHEMA_VERSION and data["kind"] == "comparison"
    assert "trace_start" in data
    for row in data["policies"].values():
        for key in ("requests", "violations", "violation_rate", "p50_ms", "p95_ms", "p99_ms", "core_seconds", "scale_actions"):
            assert key in row
    assert data["policies"]["themis"]["ratio_to_themis"]["core_seconds"] == 1.0
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
