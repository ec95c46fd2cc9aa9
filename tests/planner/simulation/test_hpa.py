"""The Kubernetes HPA rule, stepped sync by sync with an injected clock (Ray's scripted-flow style)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from themis.planner.simulation.controllers.hpa import SYNC_PERIOD_S, HpaConfig, HpaContext, HpaState, hpa_decide

CONFIG = HpaConfig(target_utilisation=0.6, max_replicas=20)


def run_flow(replicas: int, utilisations: list[float], config: HpaConfig = CONFIG) -> list[int]:
    """Feed one utilisation per 15 s sync; replicas become ready at once. Returns each decision."""
    state, out = HpaState(), []
    for i, util in enumerate(utilisations):
        ctx = HpaContext(now_s=i * SYNC_PERIOD_S, current_replicas=replicas, ready_replicas=replicas,
                         utilisation=util, config=config, state=state)
        replicas, state = hpa_decide(ctx)
        out.append(replicas)
    return out


def test_scale_up_is_ceil_of_current_times_ratio():
    assert run_flow(4, [0.9]) == [6]  # ceil(4 * 0.9 / 0.6)


def test_within_tolerance_nothing_changes():
    assert run_flow(4, [0.64, 0.56]) == [4, 4]  # ratios 1.067 and 0.933 are within 0.1


def test_scale_down_waits_for_the_stabilisation_window():
    # high load at t=0 recommends 6; then 20 syncs (300 s) of low load recommend 2
    decisions = run_flow(4, [0.9] + [0.2] * 21)
    assert decisions[0] == 6
    # the t=0 recommendation (6) stays in the 300 s window until t=300 (sync 20)
    assert all(d == 6 for d in decisions[1:20])
    assert decisions[20] == 2  # ceil(6 * 0.2 / 0.6)


def test_scale_up_is_limited_to_double_or_four_more():
    assert run_flow(2, [6.0]) == [6]  # ceil(2 * 10) = 20, limited to max(4, 2 + 4)
    assert run_flow(10, [6.0]) == [20]  # limited to 2 x 10 (and max_replicas 20)


def test_booting_replicas_count_as_idle_when_scaling_up():
    ctx = HpaContext(now_s=0.0, current_replicas=4, ready_replicas=2, utilisation=0.9, config=CONFIG)
    desired, _ = hpa_decide(ctx)
    assert desired == 4  # 0.9 * 2/4 / 0.6 = 0.75 < 1: the scale-up reverses, so nothing changes
    ctx = HpaContext(now_s=0.0, current_replicas=4, ready_replicas=3, utilisation=1.2, config=CONFIG)
    assert hpa_decide(ctx)[0] == 6  # 1.2 * 3/4 / 0.6 = 1.5 -> ceil(6)


def test_no_metric_keeps_the_replicas():
    assert run_flow(3, [math.nan]) == [3]


@given(
    replicas=st.integers(1, 30),
    utils=st.lists(st.floats(0.0, 5.0, allow_nan=False), min_size=1, max_size=40),
)
def test_decisions_stay_within_bounds(replicas, utils):
    config = HpaConfig(target_utilisation=0.5, min_replicas=1, max_replicas=30)
    for d in run_flow(replicas, utils, config):
        assert config.min_replicas <= d <= config.max_replicas
