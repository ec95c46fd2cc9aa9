"""The oracle: per interval the cheapest allocation that holds the SLO in simulation,
checked against brute force, then replayed by the product simulator on the real LLM
trace, where it holds the SLO in every interval and costs least of all policies."""

from __future__ import annotations

import numpy as np
import pytest
from support.standard_setting import BATCHES, CORES, standard_model

from themis.data import bundled_trace
from themis.planner.model import replay
from themis.planner.model.config import PlanConfig, SimConfig
from themis.planner.model.serving import Stage
from themis.planner.optimise.plan import plan
from themis.planner.optimise.space import StageSpace
from themis.planner.policies.oracle import cheapest_holding
from themis.planner.simulation.driver import simulate
from themis.planner.traffic.loading import load_trace

SLO_MS = 400.0


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return standard_model(tmp_path_factory.mktemp("profile"))


@pytest.fixture(scope="module")
def trace():
    return load_trace(bundled_trace("azure_llm_2023_code")).scaled(4.0, seed=2)


@pytest.mark.parametrize("minute", [14, 20, 42])
def test_cheapest_holding_is_the_brute_force_optimum(model, trace, minute: int) -> None:
    space = StageSpace(Stage("s", model.model), [model], PlanConfig(slo_ms=SLO_MS, cores=CORES, batch_sizes=BATCHES, max_replicas=12))
    arrivals = trace.request_arrivals(0)
    window = arrivals[(arrivals >= minute * 60.0) & (arrivals < (minute + 1) * 60.0)] - minute * 60.0
    allowed = int(np.floor(0.01 * window.size + 1e-9))
    holding = [
        (float(space.cost_per_hour[k, r - 1]), -float(space.capacity_rps[k, r - 1]), k, r)
        for k in range(space.n_candidates)
        for r in range(1, space.max_replicas + 1)
        if replay.violations(window, r, int(space.k_batch[k]), space.k_service_ms[k], SLO_MS) <= allowed
    ]
    assert holding, "some allocation holds this minute"
    best = min(holding)
    holds = lambda k, r: replay.violations(window, r, int(space.k_batch[k]), space.k_service_ms[k], SLO_MS) <= allowed
    k, r = cheapest_holding(space, window, 60.0, holds)
    assert (float(space.cost_per_hour[k, r - 1]), -float(space.capacity_rps[k, r - 1])) == best[:2]


def test_the_oracle_holds_the_slo_in_simulation_and_is_the_cost_floor(model, trace) -> None:
    config = PlanConfig(slo_ms=SLO_MS, cores=CORES, batch_sizes=BATCHES)
    arrivals = trace.request_arrivals(0)
    stages = [(Stage("s", model.model), model)]
    oracle = plan(trace, stages, config, "oracle").schedule
    result = simulate(arrivals, oracle, [model], SimConfig(slo_ms=SLO_MS), cores_options=CORES)
    minute = (arrivals // 60.0).astype(int)
    per_interval = [np.mean(result.latencies_ms[minute == i] > SLO_MS) for i in np.unique(minute)]
    assert max(per_interval) <= 0.01  # p99 within the SLO in every interval, with the delays applied
    for policy in ("themis", "horizontal", "static"):
        assert oracle.core_seconds() <= plan(trace, stages, config, policy).schedule.core_seconds()
