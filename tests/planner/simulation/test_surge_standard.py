"""The `themis` runtime controller in issue 10's standard setting on a real bundled trace
(the Azure LLM 2023 code trace, amplified as the setting says): it reacts to a burst
within the time its module states, and it violates the SLO no more often than an
independent simple two-stage controller (`support.simple_controller`)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from support.simple_controller import SimpleTwoStageController
from support.standard_setting import CORES, amplified, latency_ms, standard_model, standard_plan_config

from themis.data import bundled_trace
from themis.planner.model.config import DEFAULT_SURGE_CHECK_S, DEFAULT_SURGE_RATE_WINDOW_S, SimConfig
from themis.planner.model.serving import Stage
from themis.planner.optimise.plan import plan
from themis.planner.simulation.driver import simulate
from themis.planner.traffic.loading import load_trace

WARMUP_S = 300.0
REACTION_S = DEFAULT_SURGE_RATE_WINDOW_S + DEFAULT_SURGE_CHECK_S
"""The stated reaction time (module docstring of `controllers.surge`): a second of
arrivals beyond what the plan carries is acted on by the next check after it."""


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return standard_model(tmp_path_factory.mktemp("standard"))


@pytest.fixture(scope="module")
def code_trace():
    return load_trace(bundled_trace("azure_llm_2023_code"))


def _themis_run(trace, model, cold_start_s: float, forecast: str = "auto"):
    stage = Stage(model.model, model.model)
    config = dataclasses.replace(standard_plan_config(cold_start_s), forecast=forecast)
    schedule = plan(trace, [(stage, model)], config, "themis").schedule
    sim = SimConfig(slo_ms=400.0, cold_start_s=cold_start_s, resize_s=1.0, horizon_s=trace.duration_s)
    return schedule, simulate(trace.request_arrivals(0), schedule, [model], sim, cores_options=CORES), sim


def _cores_requested_at(timeline: list[dict], t_s: float, opening: int) -> int:
    """Total cores the controller had asked for at t_s (the last change at or before it)."""
    cores = opening
    for event in timeline:
        if event["t_s"] > t_s + 1e-9:
            break
        cores = event["total_cores"]
    return cores


@pytest.mark.parametrize("copies", [10, 30])
def test_a_burst_beyond_the_plan_is_acted_on_within_the_stated_time(model, code_trace, copies: int) -> None:
    trace = amplified(code_trace, copies)
    schedule, result, _ = _themis_run(trace, model, 30.0)
    counts = np.bincount(np.floor(trace.request_arrivals(0)).astype(np.int64))
    bursts = []
    for step in schedule.steps:
        alloc = step.stages[0]
        for s in range(int(step.t_start_s), int(step.t_end_s)):
            if s < counts.size and counts[s] > 1.2 * alloc.capacity_rps:
                bursts.append((s, alloc.total_cores))
    assert bursts, "the excerpt has bursts beyond the plan"  # the trace is bursty at this scale
    late = [
        s for s, planned_cores in bursts
        if _cores_requested_at(result.timeline, s + REACTION_S, schedule.steps[0].stages[0].total_cores) <= planned_cores
    ]
    assert not late, f"seconds with arrivals beyond the plan not acted on within {REACTION_S} s: {late}"


KNOWN_GAP = pytest.mark.xfail(strict=True, reason=(
    "issue 10, open: planned on the `auto` forecast (chosen by planning loss), the plan sits low on the amplified code "
    "trace and themis violates more than the simple controller (1,180 against 496 at x10); strict, so it fails once fixed"))


@pytest.mark.parametrize("forecast", ["ewma", pytest.param("auto", marks=KNOWN_GAP)])
@pytest.mark.parametrize("copies", [10, 30])
def test_themis_violates_no_more_than_the_simple_controller(model, code_trace, copies: int, forecast: str) -> None:
    trace = amplified(code_trace, copies)
    _, themis, sim = _themis_run(trace, model, 30.0, forecast)
    simple = SimpleTwoStageController(Stage(model.model, model.model), lambda b, c: latency_ms(b, c) / 1000.0, CORES, batch=4)
    reference = simulate(trace.request_arrivals(0), simple, [model], sim, cores_options=CORES)
    counted = trace.request_arrivals(0) >= WARMUP_S
    ours = int((themis.latencies_ms[counted] > 400.0).sum())
    theirs = int((reference.latencies_ms[counted] > 400.0).sum())
    assert theirs > 0  # the comparison is not between two perfect runs
    assert ours <= theirs
