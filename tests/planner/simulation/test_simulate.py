"""The simulator against hand-computed latencies, queueing theory and the SimPy reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.plan_support import PROFILES
from support.simpy_reference import simulate_reference

from themis.planner.errors import PlanInputError
from themis.planner.model.config import SimConfig
from themis.planner.model.serving import Group, Schedule, Stage, StageAllocation, Step
from themis.planner.simulation.controllers.hpa import HpaConfig, HpaController
from themis.planner.simulation.controllers.hpa_behavior import HpaBehavior, ScalingPolicy, ScalingRules
from themis.planner.simulation.controllers.schedule import ScheduleController
from themis.planner.simulation.driver import simulate_tables
from themis.planner.simulation.tables import QUANTILE_KNOTS, ServiceTables


def make_schedule(steps, n_stages=1, surge_rules=()):
    """steps: (t_start, t_end, [per stage: ([(replicas, cores), ...], batch)])."""
    return Schedule(
        policy="test", slo_ms=150.0, percentile=99.0, interval_s=10.0, trace_start=None,
        cold_start_s=3.0, resize_s=1.0,
        stages=tuple(Stage(f"s{i}", f"m{i}") for i in range(n_stages)),
        steps=[
            Step(t0, t1, 0.0, tuple(StageAllocation(tuple(Group(r, c) for r, c in groups), batch) for groups, batch in per_stage))
            for t0, t1, per_stage in steps
        ],
        surge_rules=surge_rules,
    )


def test_hand_computed_schedule_is_reproduced_exactly():
    # One stage. Service: 1 core: batch 1 = 100 ms, batch 2 = 150 ms; 2 cores: 60 ms, 90 ms.
    service = np.zeros((1, 3, 2))
    service[0, 1] = [100.0, 60.0]
    service[0, 2] = [150.0, 90.0]
    tables = ServiceTables((1, 2), service)
    # [0,10): A = 1 replica x 1 core, batch 2 (opening: ready at once)
    # [10,20): 2 x 1 core: B is added at 10, cold start 3 s -> ready at 13
    # [20,30): 1 x 2 cores: A (idle, oldest) is resized (lands at 21), B is removed at 20
    schedule = make_schedule([
        (0.0, 10.0, [([(1, 1)], 2)]),
        (10.0, 20.0, [([(2, 1)], 2)]),
        (20.0, 30.0, [([(1, 2)], 2)]),
    ])
    arrivals = np.array([1.0, 2.0, 2.05, 2.08, 10.5, 13.01, 13.02, 20.95, 21.5, 22.0, 22.01, 22.02])
    expected_ms = [
        100.0,  # 1.00: A idle, batch of 1 -> 1.10
        100.0,  # 2.00: A idle -> done 2.10
        200.0,  # 2.05: queued; at 2.10 A takes 2.05 and 2.08 as a batch of 2 (150 ms) -> 2.25
        170.0,  # 2.08: same batch -> 2.25
        100.0,  # 10.5: B still booting, A serves -> 10.6
        100.0,  # 13.01: A (idle since 10.6) is idle longer than B (ready at 13) -> 13.11
        100.0,  # 13.02: B takes it -> 13.12
        100.0,  # 20.95: A still 1 core (resize lands at 21); the batch keeps its speed -> 21.05
        60.0,   # 21.5: A now has 2 cores -> 21.56
        60.0,   # 22.00: -> 22.06
        140.0,  # 22.01: queued; at 22.06 batch of 2 on 2 cores (90 ms) -> 22.15
        130.0,  # 22.02: same batch -> 22.15
    ]
    result = simulate_tables(arrivals, ScheduleController(schedule), tables, SimConfig(cold_start_s=3.0, resize_s=1.0, slo_ms=150.0))
    np.testing.assert_allclose(result.latencies_ms, expected_ms, atol=1e-9)
    # A: 1 core for [0, 21) + 2 cores for [21, 30) = 39; B: 1 core for [10, 20) = 10 (booting charged)
    assert result.core_seconds == pytest.approx(49.0)
    assert result.scale_actions == 2
    assert result.violations == 2  # 200 and 170 ms exceed 150 ms


def test_a_warm_up_is_served_but_not_counted():
    """The hand-computed schedule above, measured from t = 15 s: the requests of [15, 30),
    core-seconds of [15, 30), the scale action at 20 s (not the one at 10 s)."""
    service = np.zeros((1, 3, 2))
    service[0, 1] = [100.0, 60.0]
    service[0, 2] = [150.0, 90.0]
    schedule = make_schedule([(0.0, 10.0, [([(1, 1)], 2)]), (10.0, 20.0, [([(2, 1)], 2)]), (20.0, 30.0, [([(1, 2)], 2)])])
    arrivals = np.array([1.0, 2.0, 2.05, 2.08, 10.5, 13.01, 13.02, 20.95, 21.5, 22.0, 22.01, 22.02])
    config = SimConfig(cold_start_s=3.0, resize_s=1.0, slo_ms=150.0, warmup_s=15.0)
    result = simulate_tables(arrivals, ScheduleController(schedule), ServiceTables((1, 2), service), config)
    assert result.requests == 5 and result.violations == 0  # the 200 and 170 ms ones arrived in the warm-up
    assert result.core_seconds == pytest.approx(6.0 + 18.0 + 5.0)  # A: 1 core to 21, 2 cores to 30; B: to 20
    assert result.scale_actions == 1
    assert result.to_frame()["counted"].sum() == 5 and result.to_dict()["warmup_s"] == 15.0
    np.testing.assert_allclose(result.latencies_ms[7:], [100.0, 60.0, 60.0, 140.0, 130.0], atol=1e-9)


def test_md1_mean_wait_matches_pollaczek_khinchine():
    service_ms, rate_rps, n = 10.0, 70.0, 400_000
    rho = rate_rps * service_ms / 1000.0
    tables = ServiceTables((1,), np.array([[[0.0], [service_ms]]]))
    arrivals = np.cumsum(np.random.default_rng(7).exponential(1.0 / rate_rps, n))
    schedule = make_schedule([(0.0, float(arrivals[-1]) + 1.0, [([(1, 1)], 1)])])
    result = simulate_tables(arrivals, ScheduleController(schedule), tables, SimConfig(slo_ms=1e9))
    wait_ms = result.latencies_ms - service_ms
    expected_ms = rho * service_ms / (2.0 * (1.0 - rho))
    assert wait_ms.mean() == pytest.approx(expected_ms, rel=0.05)


def test_stage_without_replicas_drops_requests_as_violations():
    tables = ServiceTables((1,), np.array([[[0.0], [10.0]]]))
    schedule = make_schedule([(0.0, 5.0, [([(1, 1)], 1)]), (5.0, 10.0, [([], 1)])])
    result = simulate_tables(np.array([1.0, 6.0, 7.0]), ScheduleController(schedule), tables, SimConfig(slo_ms=150.0))
    assert result.dropped == 2 and result.violations == 2
    assert result.to_dict()["p99_ms"] is None  # infinite: JSON has no infinity


def test_unknown_cores_is_bad_input():
    tables = ServiceTables((1,), np.array([[[0.0], [10.0]]]))
    schedule = make_schedule([(0.0, 5.0, [([(1, 4)], 1)])])
    with pytest.raises(PlanInputError):
        simulate_tables(np.array([1.0]), ScheduleController(schedule), tables, SimConfig(slo_ms=150.0))


# --------------------------------------------------------------------- SimPy agreement

CORES = (1, 2, 4)


def random_tables(rng, n_stages, max_batch, sampled):
    base = rng.uniform(5.0, 60.0, size=(n_stages, 1, 1))
    k = np.arange(max_batch + 1)[None, :, None]
    cores = np.array(CORES)[None, None, :]
    service = base * (0.4 + 0.6 * k) / cores ** rng.uniform(0.5, 1.0) + rng.uniform(0, 3, size=(n_stages, max_batch + 1, len(CORES)))
    quant = None
    if sampled:
        spread = np.sort(rng.uniform(0.6, 2.5, size=service.shape + (len(QUANTILE_KNOTS),)), axis=-1)
        spread[..., 1] = 1.0
        spread = np.sort(spread, axis=-1)
        quant = service[..., None] * spread
    return ServiceTables(CORES, service, quant)


def random_schedule(rng, n_stages, horizon_s, max_batch):
    cuts = np.sort(rng.uniform(0.0, horizon_s, size=rng.integers(0, 4)))
    bounds = [0.0, *cuts.tolist(), horizon_s]
    steps = []
    for t0, t1 in zip(bounds, bounds[1:]):
        per_stage = []
        for _ in range(n_stages):
            groups = [(int(rng.integers(1, 4)), int(rng.choice(CORES))) for _ in range(rng.integers(1, 3))]
            per_stage.append((groups, int(rng.integers(1, max_batch + 1))))
        steps.append((t0, t1, per_stage))
    return make_schedule(steps, n_stages)


def assert_same(arrivals, make_controller, tables, config, horizon_s):
    ours = simulate_tables(arrivals, make_controller(), tables, config)
    ref_latency_ms, ref_core_s, ref_actions = simulate_reference(arrivals, make_controller(), tables, config, horizon_s)
    np.testing.assert_allclose(ours.latencies_ms, ref_latency_ms, rtol=0, atol=1e-9)
    assert ours.core_seconds == pytest.approx(ref_core_s, abs=1e-6)
    assert ours.scale_actions == ref_actions
    return ours


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n_stages=st.sampled_from([1, 1, 2]),
    n_requests=st.integers(1, 300),
    sampled=st.booleans(),
)
def test_planned_schedules_agree_with_simpy_request_by_request(seed, n_stages, n_requests, sampled):
    rng = np.random.default_rng(seed)
    max_batch = 4
    horizon_s = float(rng.uniform(5.0, 40.0))
    arrivals = np.sort(rng.uniform(0.0, horizon_s, n_requests))
    tables = random_tables(rng, n_stages, max_batch, sampled)
    schedule = random_schedule(rng, n_stages, horizon_s, max_batch)
    config = SimConfig(
        cold_start_s=float(rng.uniform(0.0, 8.0)), resize_s=float(rng.uniform(0.0, 2.0)), slo_ms=100.0,
        seed=seed % 1000, service="sampled" if sampled else "median", warmup_s=float(rng.choice([0.0, rng.uniform(0.0, horizon_s)])),
    )
    assert_same(arrivals, lambda: ScheduleController(schedule), tables, config, horizon_s)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n_stages=st.sampled_from([1, 2]), with_behavior=st.booleans())
def test_hpa_closed_loop_agrees_with_simpy(seed, n_stages, with_behavior):
    rng = np.random.default_rng(seed)
    horizon_s = 120.0
    rate = np.where(np.arange(1200) < 600, rng.uniform(5, 20), rng.uniform(30, 80))
    arrivals = np.sort(np.concatenate([rng.uniform(i * 0.1, (i + 1) * 0.1, rng.poisson(r * 0.1)) for i, r in enumerate(rate)]))
    tables = random_tables(rng, n_stages, 4, False)
    opening = [StageAllocation((Group(1, int(rng.choice(CORES))),), int(rng.integers(1, 5))) for _ in range(n_stages)]
    config = SimConfig(cold_start_s=float(rng.uniform(1, 20)), resize_s=1.0, slo_ms=200.0, warmup_s=float(rng.choice([0.0, 37.5, 60.0])))

    def controller():
        stages = tuple(Stage(f"s{i}", f"m{i}") for i in range(n_stages))
        behavior = HpaBehavior(scale_down=ScalingRules(30.0, "Max", (ScalingPolicy("Pods", 1, 15),))) if with_behavior else None
        return HpaController(opening, stages, HpaConfig(target_utilisation=0.5, max_replicas=8, behavior=behavior), horizon_s=horizon_s)

    ours = assert_same(arrivals, controller, tables, config, horizon_s)
    assert len(ours.timeline) >= n_stages


def test_sampled_service_follows_the_measured_percentiles():
    # one idle replica, requests far apart: every latency is one batch-of-1 service time
    from themis.planner.model.latency import load_latency_models
    from themis.planner.simulation.driver import simulate

    model = load_latency_models([PROFILES / "resnet18_cpu.parquet"])["resnet18"]
    arrivals = np.arange(20_000) * 10.0
    schedule = make_schedule([(0.0, float(arrivals[-1]) + 10.0, [([(1, 1)], 1)])])
    schedule.stages = (Stage("resnet18", "resnet18"),)
    config = SimConfig(slo_ms=1e9, service="sampled", seed=5)
    result = simulate(arrivals, schedule, {"resnet18": model}, config)
    lat = result.latencies_ms
    assert np.percentile(lat, 50) == pytest.approx(model.percentile_ms(1, 1, 50), rel=0.02)
    assert np.percentile(lat, 95) == pytest.approx(model.percentile_ms(1, 1, 95), rel=0.05)
    # the whole measured distribution is drawn: min to max, not clamped to [p50, p99]
    assert np.mean(lat < model.percentile_ms(1, 1, 50)) == pytest.approx(0.5, abs=0.02)
    assert np.mean(lat > model.percentile_ms(1, 1, 99)) == pytest.approx(0.01, abs=0.004)
    assert model.percentile_ms(1, 1, 0) * (1 - 1e-9) <= lat.min() and lat.max() <= model.percentile_ms(1, 1, 100) * (1 + 1e-9)
    median = simulate(arrivals, schedule, {"resnet18": model}, SimConfig(slo_ms=1e9)).latencies_ms
    np.testing.assert_allclose(median, model.predict_ms(1, 1), rtol=1e-9)


def test_hpa_used_as_documented_keeps_syncing_until_the_last_arrival():
    """Built with no horizon (the default), the HPA must still act after its first sync."""
    rng = np.random.default_rng(8)
    tables = random_tables(rng, 1, 4, False)
    capacity = 1 * 1000.0 / tables.service_ms[0, 1, 0]
    arrivals = np.sort(rng.uniform(0.0, 300.0, int(3 * capacity * 300)))  # 3x one replica's capacity
    opening = [StageAllocation((Group(1, CORES[0]),), 1)]
    controller = HpaController(opening, (Stage("s0", "m0"),), HpaConfig(target_utilisation=0.5, max_replicas=8))
    result = simulate_tables(arrivals, controller, tables, SimConfig(slo_ms=200.0, cold_start_s=5.0))
    assert result.scale_actions >= 1 and max(row["replicas"] for row in result.timeline) > 1


def test_hpa_holds_its_opening_replicas_for_the_stabilisation_window():
    """Kubernetes records the starting count as a recommendation: an HPA started with more
    replicas than a light load needs shrinks only once that count is 300 s old."""
    rng = np.random.default_rng(4)
    tables = random_tables(rng, 1, 4, False)
    capacity = 1000.0 / tables.service_ms[0, 1, 0]
    arrivals = np.sort(rng.uniform(0.0, 600.0, int(0.5 * capacity * 600)))  # half of one replica
    opening = [StageAllocation((Group(4, CORES[0]),), 1)]
    controller = HpaController(opening, (Stage("s0", "m0"),), HpaConfig(target_utilisation=0.6, max_replicas=8))
    result = simulate_tables(arrivals, controller, tables, SimConfig(slo_ms=200.0, cold_start_s=5.0))
    changes = [row["t_s"] for row in result.timeline[1:]]
    assert changes and changes[0] == 315.0  # the first sync after t = 0 + 300 s
