"""The themis runtime controller as scripted scenarios with an injected clock (the
observations carry the time), then closed-loop in the simulator: it stays put on noise,
sizes a burst in one step, leaves surge mode once repacked replicas are ready, and agrees
with the SimPy reference. Service times are the standard setting's Amdahl law."""

from __future__ import annotations

import numpy as np
import pytest
from support.simpy_reference import simulate_reference
from support.standard_setting import CORES, latency_ms, standard_model, standard_rule, standard_tables

from themis.planner.model.config import PlanConfig, SimConfig
from themis.planner.model.queueing import estimate_latency_ms
from themis.planner.model.serving import Group, Schedule, Stage, StageAllocation, Step
from themis.planner.optimise.plan import plan
from themis.planner.simulation.controllers.schedule import ScheduleController
from themis.planner.simulation.controllers.surge import SurgeController
from themis.planner.simulation.driver import simulate, simulate_tables
from themis.planner.simulation.observation import Observation, StageView
from themis.planner.traffic.trace import Trace

SLO_MS = 400.0


def flat_schedule(replicas: int = 4, cores: int = 1, batch: int = 4, horizon_s: float = 300.0, interval_s: float = 60.0) -> Schedule:
    """One stage planned at `replicas` x `cores`, `batch` for every interval, with the
    standard setting's surge rule."""
    alloc = StageAllocation((Group(replicas, cores),), batch)
    steps = [Step(t, t + interval_s, 0.0, (alloc,)) for t in np.arange(0.0, horizon_s, interval_s)]
    return Schedule(
        policy="themis", slo_ms=SLO_MS, percentile=99.0, interval_s=interval_s, trace_start=None, cold_start_s=30.0,
        resize_s=1.0, stages=(Stage("s", "m"),), steps=steps, surge_rules=(standard_rule(SLO_MS),),
    )


class Clock:
    """Observations for a controller, stepped by hand: the time is injected, never read."""

    def __init__(self, controller: SurgeController, ready: tuple[Group, ...], batch: int) -> None:
        self.controller, self.ready, self.batch, self.now_s = controller, ready, batch, 0.0
        self.decisions: list[tuple[float, StageAllocation | None]] = []
        self.tick(0, queue=0)  # the opening decision

    def tick(self, arrivals: int, queue: int, oldest_wait_s: float = 0.0, dt_s: float | None = None) -> StageAllocation | None:
        window = self.controller.check_s if dt_s is None else dt_s
        if self.decisions:
            self.now_s += window
        view = StageView(
            groups=self.ready, batch=self.batch, ready_replicas=sum(g.replicas for g in self.ready), queue_len=queue,
            utilisation=float("nan"), ready_groups=self.ready, booting=(), oldest_wait_s=oldest_wait_s,
        )
        (target,), _ = self.controller.decide(Observation(self.now_s, window, arrivals, (view,)))
        self.decisions.append((self.now_s, target))
        if target is not None:
            self.ready = tuple(g for g in target.groups if g.cores == max(x.cores for x in target.groups))
            self.batch = target.batch
        return target


def test_poisson_noise_around_a_load_the_plan_carries_changes_nothing() -> None:
    # 4 x 1 core at batch 4 carry 142 rps; Poisson at 110 rps, counted every check
    controller = SurgeController(flat_schedule())
    clock = Clock(controller, (Group(4, 1),), 4)
    counts = np.random.default_rng(5).poisson(110 * controller.check_s, size=1100)
    changes = [clock.tick(int(n), queue=0) for n in counts]
    steps = {0.0, 60.0, 120.0, 180.0, 240.0}
    assert all(t is None for (now, _), t in zip(clock.decisions[1:], changes) if now not in steps)
    assert controller.surges == 0


def test_a_burst_is_sized_in_one_step_for_its_rate_and_its_queue() -> None:
    controller = SurgeController(flat_schedule())
    clock = Clock(controller, (Group(4, 1),), 4)
    for _ in range(20):  # 10 s at 60 rps
        assert clock.tick(30, queue=0) is None or clock.now_s in (0.0,)
    # the next look comes a second later (say, a slow check): 400 rps over that second,
    # 80 requests queued
    burst_rps, queue = 400.0, 80
    grown = clock.tick(int(burst_rps), queue=queue, oldest_wait_s=0.15, dt_s=1.0)
    assert grown is not None and grown.replicas >= 4
    fast = grown.groups[0]
    assert fast.replicas == 4 and fast.cores > 1  # the running replicas, grown in place
    # the layout carries the rate by the estimate and drains the queue built until the
    # resize lands (at the old capacity meanwhile) within the SLO
    service = np.array([np.nan] + [latency_ms(k, fast.cores) for k in range(1, 17)])
    capacity = 4 * grown.batch * 1000.0 / service[grown.batch]
    old_capacity = 4 * 4 * 1000.0 / latency_ms(4, 1)
    backlog = queue + (burst_rps - old_capacity) * 1.0
    assert capacity > burst_rps
    assert 1000.0 * backlog / capacity + np.nanmax(service[1 : grown.batch + 1]) <= SLO_MS
    assert estimate_latency_ms([(4, service)], grown.batch, burst_rps, 0.99) <= SLO_MS
    # one step: at the same rate, with the queue drained, the running replicas never grow
    # further (the share of the cores that drained the queue may be released)
    for _ in range(8):
        later = clock.tick(int(burst_rps * controller.check_s), queue=5)
        assert later is None or max(g.cores for g in later.groups) <= fast.cores


def test_the_grown_layout_shrinks_back_only_after_the_burst_has_calmed() -> None:
    controller = SurgeController(flat_schedule())
    clock = Clock(controller, (Group(4, 1),), 4)
    for _ in range(20):
        clock.tick(30, queue=0)
    assert clock.tick(200, queue=80, oldest_wait_s=0.15) is not None
    start = clock.now_s
    back = None
    while back is None or back.groups != (Group(4, 1),):
        back = clock.tick(30, queue=0)
        assert clock.now_s - start < 10.0
    # it held the grown replicas for the calm window, not longer
    assert clock.now_s - start >= controller.calm_s - controller.check_s


def burst_arrivals(rates: list[tuple[float, float, float]], seed: int = 3) -> np.ndarray:
    """Poisson arrivals: (start s, end s, rps) pieces, per 0.1 s slice."""
    rng = np.random.default_rng(seed)
    parts = []
    for t0, t1, rps in rates:
        for t in np.arange(t0, t1, 0.1):
            parts.append(rng.uniform(t, t + 0.1, rng.poisson(rps * 0.1)))
    return np.sort(np.concatenate(parts))


def test_a_sustained_surge_is_absorbed_in_place_then_repacked_within_a_cold_start() -> None:
    schedule = flat_schedule(horizon_s=240.0)
    arrivals = burst_arrivals([(0.0, 60.0, 100.0), (60.0, 240.0, 450.0)])
    config = SimConfig(slo_ms=SLO_MS, cold_start_s=30.0, resize_s=1.0, horizon_s=240.0)
    result = simulate_tables(arrivals, SurgeController(schedule), standard_tables(), config)
    rows = [r for r in result.timeline if r["t_s"] > 0]
    first = rows[0]
    assert 60.0 < first["t_s"] <= 62.0  # seen and acted on within two checks
    assert first["total_cores"] > first["replicas"]  # running replicas grown in place
    # the replicas booted at once serve a cold start later, and the layout is repacked onto
    # them at once: every replica back at one core (the efficient size), on more replicas
    repacked = [r for r in rows if r["total_cores"] == r["replicas"]]
    # (asked for a resize delay before they serve, so that the shrink lands as they do)
    assert repacked and first["t_s"] + 30.0 - 1.0 <= repacked[0]["t_s"] <= first["t_s"] + 30.0 + 1.0
    assert repacked[0]["replicas"] > 4 and all(r["total_cores"] == r["replicas"] for r in rows if r["t_s"] >= repacked[0]["t_s"])
    plain = simulate_tables(arrivals, ScheduleController(schedule), standard_tables(), config)
    assert result.violations * 10 <= plain.violations


def steady_trace(rate_rps: float, minutes: int, seed: int = 1) -> Trace:
    """Poisson counts per second at one rate."""
    counts = np.random.default_rng(seed).poisson(rate_rps, size=minutes * 60)
    return Trace(name="steady", source_format="script", start=None, interval_s=1.0, counts=counts)


@pytest.mark.parametrize("rate_rps", [60.0, 200.0])
def test_on_steady_poisson_load_themis_acts_no_more_than_a_handful_beyond_horizontal(tmp_path, rate_rps: float) -> None:
    model = standard_model(tmp_path)
    trace = steady_trace(rate_rps, minutes=15)
    config = PlanConfig(slo_ms=SLO_MS, cores=CORES, batch_sizes=(1, 2, 4, 8, 16), forecast="last")
    arrivals = trace.request_arrivals(0)
    sim = SimConfig(slo_ms=SLO_MS, horizon_s=trace.duration_s)
    outcomes = {}
    for policy in ("themis", "horizontal"):
        schedule = plan(trace, [(Stage("s", model.model), model)], config, policy).schedule
        outcomes[policy] = simulate(arrivals, schedule, [model], sim, cores_options=CORES)
    assert outcomes["themis"].scale_actions <= outcomes["horizontal"].scale_actions + 4
    assert outcomes["themis"].violations <= max(outcomes["horizontal"].violations, 0.001 * arrivals.size)


def test_the_controller_agrees_with_the_simpy_reference_through_a_burst() -> None:
    schedule = flat_schedule(replicas=2, horizon_s=120.0)
    arrivals = burst_arrivals([(0.0, 40.0, 40.0), (40.0, 60.0, 220.0), (60.0, 120.0, 60.0)], seed=8)
    config = SimConfig(slo_ms=SLO_MS, cold_start_s=10.0, resize_s=1.0, horizon_s=120.0)
    ours = simulate_tables(arrivals, SurgeController(schedule), standard_tables(), config)
    latency_ms_ref, core_s, actions = simulate_reference(arrivals, SurgeController(schedule), standard_tables(), config, 120.0)
    np.testing.assert_allclose(ours.latencies_ms, latency_ms_ref, rtol=0, atol=1e-9)
    assert ours.core_seconds == pytest.approx(core_s, abs=1e-6)
    assert ours.scale_actions == actions and actions >= 2  # it grew and came back
