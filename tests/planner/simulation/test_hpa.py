"""The Kubernetes HPA rule against Kubernetes' own table-driven tests, then scripted syncs with an
injected clock (Ray's scripted-flow style).

Cases are transcribed from kubernetes/kubernetes pkg/controller/podautoscaler/
replica_calculator_test.go and horizontal_test.go; each test names the Go test it comes from.
In those tests every pod has the CPU request `requests` and reports `levels` milli-cores;
the HPA reads their sum over the ready pods, so the utilisation handed to `hpa_decide` here is
sum(levels of ready pods) / sum(requests of ready pods). Pods that are not ready, pending or
"hot" (inside the CPU initialisation period) are the booting replicas (current - ready);
failed and deleted pods are replicas already removed, which the simulator no longer counts.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from themis.planner.simulation.controllers.hpa import (
    SYNC_PERIOD_S,
    HpaConfig,
    HpaContext,
    HpaState,
    hpa_decide,
    limit_default,
    limit_with_behavior,
    rate_limit,
    recommend,
    stabilise,
    stabilise_with_behavior,
)
from themis.planner.simulation.controllers.hpa_behavior import (
    SCALE_DOWN_DEFAULT,
    SCALE_UP_DEFAULT,
    HpaBehavior,
    ScalingPolicy,
    ScalingRules,
)

NOW = 10_000.0
MINUTE = 60.0


def utilisation(levels_milli: list[int], ready: list[bool] | None = None, request_milli: int = 1000) -> tuple[float, int]:
    """(utilisation of the ready pods, ready pods) from a Go test's levels and readiness."""
    ready = ready or [True] * len(levels_milli)
    used = [level for level, ok in zip(levels_milli, ready) if ok]
    return sum(used) / (request_milli * len(used)), len(used)


def sync(current: int, levels: list[int], target_percent: int, *, ready: list[bool] | None = None, min_replicas: int = 1,
         max_replicas: int = 100, state: HpaState | None = None, request_milli: int = 1000, **config) -> int:
    """One reconcile of the HPA controller at NOW, as horizontal_test.go's `testCase` runs it."""
    util, n_ready = utilisation(levels, ready, request_milli)
    cfg = HpaConfig(target_utilisation=target_percent / 100, min_replicas=min_replicas, max_replicas=max_replicas, **config)
    return hpa_decide(HpaContext(NOW, current, n_ready, util, cfg, state or HpaState(recommendations=())))[0]


def rules(pods: int = 0, pods_period: int = 0, percent: int = 0, percent_period: int = 0, window_s: float | None = 0.0,
          select: str = "Max") -> ScalingRules:
    """horizontal_test.go `generateScalingRules(pods, podsPeriod, percent, percentPeriod, stabilizationWindow)`."""
    policies = []
    if pods:
        policies.append(ScalingPolicy("Pods", pods, pods_period))
    if percent:
        policies.append(ScalingPolicy("Percent", percent, percent_period))
    return ScalingRules(window_s, select, tuple(policies))


def events(changes: list[int], period_s: float = 120.0) -> tuple[tuple[float, int], ...]:
    """horizontal_test.go `generateEventsUniformDistribution`: each change in the middle of
    its share of the last `period_s` seconds, oldest first."""
    segment = period_s / len(changes)
    return tuple((NOW - (period_s - segment * (i + 1) + segment / 2), n) for i, n in enumerate(changes))


# --------------------------------------------------------------------------- replica_calculator_test.go


@pytest.mark.parametrize(
    "go_test, current, levels, ready, target, expected",
    [
        ("TestReplicaCalcScaleUp", 3, [300, 500, 700], None, 30, 5),
        ("TestReplicaCalcScaleUpUnreadyLessScale", 3, [300, 500, 700], [False, True, True], 30, 4),
        ("TestReplicaCalcScaleUpHotCpuLessScale", 3, [300, 500, 700], [False, True, True], 30, 4),
        ("TestReplicaCalcScaleUpUnreadyNoScale", 3, [400, 500, 700], [True, False, False], 30, 3),
        ("TestReplicaCalcScaleHotCpuNoScale", 3, [400, 500, 700], [True, False, False], 30, 3),
        ("TestReplicaCalcScaleUpIgnoresFailedPods", 2, [500, 700], None, 30, 4),
        ("TestReplicaCalcScaleUpIgnoresDeletionPods", 2, [500, 700], None, 30, 4),
        ("TestReplicaCalcScaleDown", 5, [100, 300, 500, 250, 250], None, 50, 3),
        ("TestReplicaCalcScaleDownIncludeUnreadyPods", 5, [100, 300, 500, 250, 250], [True, True, True, False, False], 50, 2),
        ("TestReplicaCalcScaleDownExcludeUnscheduledPods", 5, [100, 0, 0, 0, 0], [True, False, False, False, False], 50, 1),
        ("TestReplicaCalcScaleDownIgnoreHotCpuPods", 5, [100, 300, 500, 250, 250], [True, True, True, False, False], 50, 2),
        ("TestReplicaCalcScaleDownIgnoresFailedPods", 5, [100, 300, 500, 250, 250], None, 50, 3),
        ("TestReplicaCalcScaleDownIgnoresDeletionPods", 5, [100, 300, 500, 250, 250], None, 50, 3),
    ],
)
def test_replica_calculator_cases(go_test, current, levels, ready, target, expected):
    """replica_calculator_test.go: unready pods count as 0 % on a scale-up (and a scale-up they
    would reverse does nothing) and are dropped from the count on a scale-down."""
    util, n_ready = utilisation(levels, ready)
    assert recommend(current, n_ready, util, target) == expected, go_test


def test_replica_calc_tolerance():
    """TestReplicaCalcTolerance: requests 0.9, 1.0 and 1.1 cores using 1010, 1030 and 1020
    milli-cores is 102 % of a 100 % target, within the 0.1 tolerance."""
    assert recommend(3, 3, (1010 + 1030 + 1020) / (900 + 1000 + 1100), 100) == 3


def test_replica_calc_computed_tolerance_alg_implementation():
    """TestReplicaCalcComputedToleranceAlgImplementation: 10 pods at 50 % of their requests,
    a target just past the tolerance scales down to 9; one just inside it keeps 10."""
    requested_to_used = 2.0
    target = int((abs(1 / (requested_to_used * (1 - 0.1))) + 0.01) * 100)  # 56 %
    assert recommend(10, 10, 0.5, target) == math.ceil(0.5 / (target / 100) * 10) == 9
    target = int((abs(1 / (requested_to_used * (1 - 0.1))) + 0.004) * 100)  # 55 %
    assert recommend(10, 10, 0.5, target) == 10


def test_utilisation_is_a_truncated_integer_percent():
    """GetResourceUtilizationRatio: int32(metricsTotal * 100 / requestsTotal). 0.289 of the
    request is 28 % (not 28.9 %): against a 32 % target the ratio 0.875 is outside the tolerance."""
    assert recommend(10, 10, 0.289, 32) == 9  # ceil(28 / 32 x 10) = ceil(8.75)
    assert recommend(10, 10, 0.29, 32) == 10  # 29 / 32 = 0.906: within the tolerance, float noise of 0.29 x 100 ignored


# --------------------------------------------------------------------------- horizontal_test.go


def test_scale_up():
    """TestScaleUp (and TestScaleUpDeployment, TestScaleUpReplicaSet): 3 pods at 30 % target."""
    assert sync(3, [300, 500, 700], 30, min_replicas=2, max_replicas=6) == 5


def test_scale_up_unready_less_scale():
    """TestScaleUpUnreadyLessScale: the unready pod counts as idle, so 4 instead of 5."""
    assert sync(3, [300, 500, 700], 30, ready=[False, True, True], min_replicas=2, max_replicas=6) == 4


def test_scale_up_unready_no_scale():
    """TestScaleUpUnreadyNoScale: counting the two unready pods as idle turns the scale-up into
    a scale-down, so nothing changes."""
    assert sync(3, [400, 500, 700], 30, ready=[True, False, False], min_replicas=2, max_replicas=6) == 3


def test_scale_down():
    """TestScaleDown: 5 pods at 28 % of a 50 % target, an empty stabilisation window."""
    assert sync(5, [100, 300, 500, 250, 250], 50, min_replicas=2, max_replicas=6) == 3


def test_scale_down_include_unready_pods():
    """TestScaleDownIncludeUnreadyPods: on a scale-down the unready pods are left out of the
    count: ceil(0.6 x 3 ready) = 2, not ceil(0.6 x 5) = 3."""
    assert sync(5, [100, 300, 500, 250, 250], 50, ready=[True, True, True, False, False], min_replicas=2, max_replicas=6) == 2


def test_scale_down_stabilize_initial_size():
    """TestScaleDownStabilizeInitialSize: with no recommendation yet, the first sync records
    the current count (`recordInitialRecommendation`), so it does not shrink."""
    assert sync(5, [100, 300, 500, 250, 250], 50, min_replicas=2, max_replicas=6, state=HpaState()) == 5


def test_upscale_cap():
    """TestUpscaleCap and TestUpscaleCapGreaterThanMaxReplicas (whose test init sets
    scaleUpLimitFactor to 8): 3 pods at 200 % of a 10 % target ask for 60, capped at
    max(8 x 3, 4) = 24, or at maxReplicas 20."""
    assert sync(3, [100, 200, 300], 10, request_milli=100, scale_up_limit_factor=8) == 24
    assert sync(3, [100, 200, 300], 10, request_milli=100, scale_up_limit_factor=8, max_replicas=20) == 20


def test_upscale_cap_with_scaling_rules():
    """TestUpscaleCap as newer Kubernetes writes it, with scaleUpRules Percent 700 per 60 s."""
    behavior = HpaBehavior(scale_up=rules(percent=700, percent_period=60))
    assert sync(3, [100, 200, 300], 10, request_milli=100, behavior=behavior) == 24


@pytest.mark.parametrize(
    "current, desired, min_replicas, max_replicas, expected",
    [
        (5, 7, 3, 8, 7),  # prenormalized desired replicas within range
        (3, 1, 2, 8, 2),  # prenormalized desired replicas < minReplicas
        (20, 1000, 1, 10, 10),  # maxReplicas is the limit because maxReplicas < scaleUpLimit
        (3, 1000, 1, 2000, 6),  # scaleUpLimit is the limit: calculateScaleUpLimit(3) = max(2 x 3, 4)
        (1, 1000, 1, 2000, 4),  # the same below two replicas: scaleUpLimitMinimum
    ],
)
def test_convert_desired_replicas_with_rules(current, desired, min_replicas, max_replicas, expected):
    """TestConvertDesiredReplicasWithRules (its minReplicas 0 case needs scale-to-zero, which
    the HPA here does not model; the last case is ours, for scaleUpLimitMinimum)."""
    assert limit_default(current, desired, min_replicas, max_replicas) == expected


@pytest.mark.parametrize(
    "name, recommendations, proposal, expected",
    [
        ("empty log", [], 5, 5),
        ("stabilize", [(4, -2), (5, -1)], 3, 5),
        ("no stabilize", [(1, -2), (2, -1)], 3, 3),
        ("no stabilize - old recommendations", [(10, -10), (9, -9)], 3, 3),
        ("stabilize - old recommendations", [(10, -10), (4, -1), (5, -2), (9, -9)], 3, 5),
    ],
)
def test_normalize_desired_replicas(name, recommendations, proposal, expected):
    """TestNormalizeDesiredReplicas (stabilizeRecommendation, window 5 minutes); minutes ago."""
    window = tuple((NOW + minutes * MINUTE, r) for r, minutes in recommendations)
    stabilised, kept = stabilise(window, NOW, proposal, 5 * MINUTE)
    assert stabilised == expected, name
    assert kept[-1] == (NOW, proposal) and all(t >= NOW - 5 * MINUTE for t, _ in kept)


@pytest.mark.parametrize(
    "name, recommendations, current, proposal, up_s, down_s, expected",
    [
        ("empty recommendations for scaling down", [], 100, 5, 0, 0, 5),
        ("simple scale down stabilization", [(4, -2), (5, -1)], 100, 3, 0, 180, 5),
        ("simple scale up stabilization", [(4, -2), (5, -1)], 1, 7, 300, 0, 4),
        ("no scale down stabilization", [(1, -2), (2, -1)], 100, 3, 300, 0, 3),
        ("no scale up stabilization", [(4, -2), (5, -1)], 1, 3, 0, 300, 3),
        ("no scale down stabilization, reuse recommendation element", [(10, -10), (9, -9)], 100, 3, 0, 0, 3),
        ("no scale up stabilization, reuse recommendation element", [(10, -10), (9, -9)], 1, 100, 0, 0, 100),
        ("scale down stabilization, reuse one of obsolete recommendation element", [(10, -10), (4, -1), (5, -2), (9, -9)],
         100, 3, 0, 180, 5),
        ("scale up stabilization, reuse one of obsolete recommendation element", [(10, -100), (6, -1), (5, -2), (9, -3)],
         1, 100, 300, 0, 5),
        ("scale up and down stabilization, do not scale up when prenormalized rec goes down", [(2, -100), (3, -3)],
         2, 1, 300, 300, 2),
        ("scale up and down stabilization, do not scale down when prenormalized rec goes up", [(2, -100), (1, -3)],
         2, 3, 300, 300, 2),
    ],
)
def test_normalize_desired_replicas_with_behavior(name, recommendations, current, proposal, up_s, down_s, expected):
    """TestNormalizeDesiredReplicasWithBehavior (stabilizeRecommendationWithBehaviors); minutes ago."""
    window = tuple((NOW + minutes * MINUTE, r) for r, minutes in recommendations)
    assert stabilise_with_behavior(window, NOW, proposal, current, up_s, down_s)[0] == expected, name


SCALING_WITH_RULES = [
    # name, up events, down events, min, max, scale-up rules, scale-down rules, current, desired, expected
    ("prenormalized desired replicas within range", (), (), 3, 8, None, None, 5, 7, 7),
    ("prenormalized desired replicas < minReplicas", (), (), 2, 8, None, None, 3, 1, 2),
    ("maxReplicas is the limit because maxReplicas < scaleUpLimit", (), (), 1, 10, None, None, 20, 1000, 10),
    ("desired replica count is more than the maximum replica count", (), (), 100, 150, None, None, 100, 1000, 150),
    ("scaleUpLimit is the limit because scaleUpLimit < maxReplicas with user policies", (), (), 1, 2000,
     rules(percent=1, percent_period=60), None, 3, 1000, 4),
    ("scaleUp with default behavior", (), (), 1, 1000, None, None, 10, 50, 20),
    ("scaleUp with pods policy larger than percent policy", (), (), 1, 1000, rules(100, 60, 100, 60), None, 10, 500, 110),
    ("scaleUp with percent policy larger than pods policy", (), (), 1, 1000, rules(2, 60, 100, 60), None, 10, 500, 20),
    ("scaleUp with spec MaxReplicas limitation with large pod policy", (), (), 1, 1000, rules(100, 60), None, 10, 50, 50),
    ("scaleUp with spec MaxReplicas limitation with large percent policy", (), (), 1, 1000, rules(10000, 60), None, 10, 50, 50),
    ("scaleUp with pod policy limitation", (), (), 1, 1000, rules(30, 60), None, 10, 50, 40),
    ("scaleUp with percent policy limitation", (), (), 1, 1000, rules(percent=200, percent_period=60), None, 10, 50, 30),
    ("scaleDown with percent policy larger than pod policy", (), (), 1, 1000, None, rules(20, 60, 1, 60, 300), 100, 2, 80),
    ("scaleDown with pod policy larger than percent policy", (), (), 1, 1000, None, rules(2, 60, 1, 60, 300), 100, 2, 98),
    ("scaleDown with spec MinReplicas=nil limitation with large pod policy", (), (), 1, 1000, None,
     rules(100, 60, window_s=300), 10, 0, 1),
    ("scaleDown with spec MinReplicas limitation with large percent policy", (), (), 5, 1000, None,
     rules(percent=100, percent_period=60, window_s=300), 10, 2, 5),
    ("scaleDown with pod policy limitation", (), (), 1, 1000, None, rules(5, 60, window_s=300), 10, 2, 5),
    ("scaleDown with percent policy limitation", (), (), 1, 1000, None, rules(percent=50, percent_period=60, window_s=300),
     10, 5, 5),
    ("scaleUp with spec MaxReplicas limitation with large pod policy and events", events([1, 5, 9]), (), 1, 200,
     rules(300, 60), None, 100, 500, 200),
    ("scaleUp with spec MaxReplicas limitation with large percent policy and events", events([1, 5, 9]), (), 1, 200,
     rules(percent=10000, percent_period=60), None, 100, 500, 200),
    ("scaleUp with currentReplicas limitation with rate.PeriodSeconds with a lot of recent scale up events",
     events([1, 5, 9]), (), 1, 1000, rules(5, 120), None, 100, 500, 100),
    ("scaleUp with pod policy and previous scale up events", events([1, 5, 9]), (), 1, 1000, rules(150, 120), None,
     100, 500, 235),
    ("scaleUp with percent policy and previous scale up events", events([1, 5, 9]), (), 1, 1000,
     rules(percent=200, percent_period=120), None, 100, 500, 255),
    ("scaleDown with default policy and previous events", (), events([1, 5, 9]), 1, 1000, None, None, 10, 5, 5),
    ("scaleDown with spec MinReplicas=nil limitation with large pod policy and previous events", (), events([1, 5, 9]), 1,
     1000, None, rules(115, 120, window_s=300), 100, 0, 1),
    ("scaleDown with spec MinReplicas limitation with large pod policy and previous events", (), events([1, 5, 9]), 5, 1000,
     None, rules(130, 120, window_s=300), 100, 0, 5),
    ("scaleDown with spec MinReplicas limitation with large percent policy and previous events", (), events([1, 5, 9]), 5,
     1000, None, rules(percent=100, percent_period=120, window_s=300), 100, 2, 5),
    ("scaleDown with pod policy limitation and previous events", (), events([1, 5, 9]), 1, 1000, None,
     rules(5, 120, window_s=300), 100, 2, 100),
    ("scaleDown with percent policy limitation and previous events", (), events([2, 4, 6]), 1, 1000, None,
     rules(percent=50, percent_period=120, window_s=300), 100, 0, 56),
    ("scaleDown with previous events preventing further scale down", (), events([10, 10, 10]), 1, 1000, None,
     rules(percent=10, percent_period=120, window_s=300), 100, 0, 100),
    ("scaleDown with with previous events still allowing more scale down", (), events([10, 10, 10]), 1, 1000, None,
     rules(percent=1000, percent_period=120, window_s=300), 10, 5, 5),
    ("check 'outdated' flag for events for one behavior for up", events([8, 12, 9, 11]), (), 1, 1000, rules(1000, 60),
     None, 100, 200, 200),
    ("check that events were not marked 'outdated' for two different policies in the behavior for up",
     events([8, 12, 9, 11]), (), 1, 1000, rules(1000, 120, 100, 60), None, 100, 200, 200),
    ("check that events were marked 'outdated' for two different policies in the behavior for up",
     events([8, 12, 9, 11]), (), 1, 1000, rules(1000, 30, 100, 60), None, 100, 200, 200),
    ("check 'outdated' flag for events for one behavior for down", (), events([8, 12, 9, 11]), 1, 1000, None,
     rules(1000, 60, window_s=300), 100, 5, 5),
    ("check that events were not marked 'outdated' for two different policies in the behavior for down", (),
     events([8, 12, 9, 11]), 1, 1000, None, rules(1000, 120, 100, 60, 300), 100, 5, 5),
    ("check that events were marked 'outdated' for two different policies in the behavior for down", (),
     events([8, 12, 9, 11]), 1, 1000, None, rules(1000, 30, 100, 60, 300), 100, 5, 5),
]


@pytest.mark.parametrize("case", SCALING_WITH_RULES, ids=[c[0] for c in SCALING_WITH_RULES])
def test_scaling_with_rules(case):
    """TestScalingWithRules (convertDesiredReplicasWithBehaviorRate); unset rules take the
    v2 defaults (GenerateHPAScaleUpRules / GenerateHPAScaleDownRules). Its one case marked
    `testThis` is skipped upstream and left out here."""
    _, up_events, down_events, min_replicas, max_replicas, up_rules, down_rules, current, desired, expected = case
    behavior = HpaBehavior(up_rules or SCALE_UP_DEFAULT, down_rules or SCALE_DOWN_DEFAULT)
    state = HpaState((), up_events, down_events)
    assert limit_with_behavior(current, desired, min_replicas, max_replicas, behavior, state, NOW) == expected


def test_calculate_scale_up_and_down_limits_with_min_select_policy():
    """TestCalculateScaleUpLimitWithScalingRules and TestCalculateScaleDownLimitWithBehaviors:
    selectPolicy Min takes the smaller change of Pods 2 and Percent 50 per 60 s."""
    min_rules = ScalingRules(300.0, "Min", (ScalingPolicy("Pods", 2, 60), ScalingPolicy("Percent", 50, 60)))
    assert rate_limit(min_rules, 1, HpaState(), NOW, up=True) == 2
    assert rate_limit(min_rules, 5, HpaState(), NOW, up=False) == 3
    disabled = ScalingRules(300.0, "Disabled", min_rules.policies)
    assert rate_limit(disabled, 5, HpaState(), NOW, up=False) == 5


# --------------------------------------------------------------------------- scripted syncs

CONFIG = HpaConfig(target_utilisation=0.6, max_replicas=20)


def run_flow(replicas: int, utilisations: list[float], config: HpaConfig = CONFIG) -> list[int]:
    """The controller's life: a first sync at t = 0 with no metric yet, then one utilisation
    per 15 s sync; replicas become ready at once. Returns each decision after the first."""
    state = hpa_decide(HpaContext(0.0, replicas, 0, math.nan, config))[1]
    out = []
    for i, util in enumerate(utilisations, start=1):
        ctx = HpaContext(i * SYNC_PERIOD_S, replicas, replicas, util, config, state)
        replicas, state = hpa_decide(ctx)
        out.append(replicas)
    return out


def test_within_tolerance_nothing_changes():
    assert run_flow(4, [0.64, 0.56]) == [4, 4]  # ratios 1.067 and 0.933 are within 0.1


def test_the_starting_count_holds_for_the_stabilisation_window():
    # 4 replicas at start, low load from the first sync: the recommendation is 2 at once,
    # but the starting 4 (recorded at t = 0) stays in the window until t = 300 inclusive
    decisions = run_flow(4, [0.2] * 21)
    assert decisions[:20] == [4] * 20  # t = 15 .. 300
    assert decisions[20] == 2  # t = 315: ceil(4 x 20 / 60)


def test_the_window_keeps_unclamped_recommendations():
    # 2 replicas at 6x the target ask for 12 but may add only up to max(2 x 2, 4) = 4; the
    # next sync's 10 % load recommends 1, yet the window still holds the unclamped 12, and
    # a window maximum above the current count is a scale-up: to min(12, max(2 x 4, 4)) = 8
    assert run_flow(2, [3.6, 0.1]) == [4, 8]


def test_with_behavior_the_default_policies_double_per_sync():
    # v2 defaults: up by max(4 pods, 100 %) per 15 s period; the previous sync's change is
    # exactly one period old, which Kubernetes' strict `After` no longer counts
    behavior = HpaConfig(target_utilisation=0.5, max_replicas=100, behavior=HpaBehavior())
    assert run_flow(2, [5.0, 5.0, 5.0], behavior) == [6, 12, 24]


def test_no_metric_keeps_the_replicas():
    assert run_flow(3, [math.nan]) == [3]


@given(
    replicas=st.integers(1, 30),
    utils=st.lists(st.floats(0.0, 5.0, allow_nan=False), min_size=1, max_size=40),
    with_behavior=st.booleans(),
)
def test_decisions_stay_within_bounds(replicas, utils, with_behavior):
    config = HpaConfig(target_utilisation=0.5, min_replicas=1, max_replicas=30, behavior=HpaBehavior() if with_behavior else None)
    for d in run_flow(replicas, utils, config):
        assert config.min_replicas <= d <= config.max_replicas
