"""A plain SimPy model of SPEC's serving model: the correctness reference for `simulate`.

Written the straightforward way (one process per request source, per replica, per
controller; Python objects, SimPy's own event queue) and without sharing code with the
compiled simulator, so agreement request by request means both implement the same rules
(see the `themis.planner.simulation.driver` docstring for them):

- FIFO queue per stage; an idle ready replica takes min(queue, batch) at once; when
  several are idle the one idle longest takes the work;
- cold start for added replicas (the first decision's replicas are ready at once);
- a resize lands resize_s after it was asked for; a running batch keeps its speed;
- a removed replica takes no new work and finishes its batch;
- a new allocation keeps the readiest replicas (serving before booting; among serving
  ones those already at a wanted size, then busy before idle, then the oldest), gives
  the serving ones the largest sizes and the booting ones the next (resizing only those
  not already at a size of their tier), and boots the smallest sizes as new replicas;
- controllers decide from their first time until the cost horizon, before any other event
  at the same time;
- core-seconds are integrated over [warmup, horizon] and scale actions counted from the
  warm-up on; utilisation is busy / ready core-seconds; a controller also sees the ready
  replicas by their (target) cores, the booting ones with the time they will serve, and the
  age of the request at the head of each queue.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import simpy

from themis.planner.model.config import SimConfig
from themis.planner.model.serving import Group, StageAllocation
from themis.planner.simulation.observation import Observation, StageView
from themis.planner.simulation.tables import QUANTILE_KNOTS, ServiceTables


@dataclass(eq=False)
class Replica:
    """One replica; compared by identity (two replicas can look alike)."""

    stage: int
    cores: int
    booting: bool
    idle: bool = False
    idle_seq: int = 0
    removed: bool = False
    gone: bool = False
    target_cores: int = 0
    resize_token: int = 0
    wake: simpy.Event | None = None
    batch_start_s: float = 0.0
    ready_at_s: float = 0.0
    charges: list[tuple[float, int]] = field(default_factory=list)
    """(time, cores charged from then on); cores 0 once gone."""


class ReferenceModel:
    def __init__(self, arrivals_s, controller, tables: ServiceTables, config: SimConfig, horizon_s: float):
        self.env = simpy.Environment()
        self.arrivals = np.asarray(arrivals_s, dtype=float)
        self.controller = controller
        self.tables = tables
        self.config = config
        self.horizon_s = horizon_s
        n_stages = tables.stages
        self.queues = [deque() for _ in range(n_stages)]
        self.replicas: list[list[Replica]] = [[] for _ in range(n_stages)]
        self.all_replicas: list[Replica] = []
        self.batch = [1] * n_stages
        self.done = np.full(self.arrivals.size, math.inf)
        self.idle_counter = itertools.count()
        self.sampled = config.service == "sampled"
        self.uniforms = np.random.default_rng(config.seed).random(n_stages * self.arrivals.size) if self.sampled else None
        self.busy_core_s = [0.0] * n_stages
        self.running: list[set] = [set() for _ in range(n_stages)]
        self.ready_log: list[list[tuple[float, int]]] = [[(0.0, 0)] for _ in range(n_stages)]
        self.last_obs = (0.0, 0, [0.0] * n_stages, [0.0] * n_stages)
        self.arrived = 0
        self.scale_actions = 0

    # --- requests -------------------------------------------------------------
    def source(self):
        for i, t in enumerate(self.arrivals):
            yield self.env.timeout(t - self.env.now)
            self.arrived = i + 1
            self.queues[0].append(i)
            self.dispatch(0)

    def service_s(self, stage, k, cores, first_req):
        j = self.tables.cores_options.index(cores)
        if not self.sampled:
            return self.tables.service_ms[stage, k, j] / 1000.0
        u = self.uniforms[stage * self.arrivals.size + first_req]
        q = self.tables.quantile_ms[stage, k, j]
        return float(np.interp(u, QUANTILE_KNOTS, q)) / 1000.0

    def dispatch(self, stage):
        while self.queues[stage]:
            idle = [r for r in self.replicas[stage] if r.idle and not r.removed]
            if not idle:
                return
            r = min(idle, key=lambda x: x.idle_seq)
            k = min(len(self.queues[stage]), self.batch[stage])
            batch = [self.queues[stage].popleft() for _ in range(k)]
            r.idle = False
            r.batch_start_s = self.env.now
            self.running[stage].add(id(r))
            r.wake.succeed((batch, self.service_s(stage, k, r.cores, batch[0]), r.cores))

    def make_idle(self, r: Replica):
        r.idle, r.idle_seq, r.wake = True, next(self.idle_counter), self.env.event()

    def replica(self, r: Replica):
        if r.booting:
            yield self.env.timeout(self.config.cold_start_s)
            if r.removed:
                return
            r.booting = False
            self.ready_change(r.stage, r.cores)
        last = r.stage + 1 >= len(self.queues)
        self.make_idle(r)
        self.dispatch(r.stage)
        while True:
            batch, service_s, cores = yield r.wake
            if batch is None:  # removed while idle
                return
            yield self.env.timeout(service_s)
            self.running[r.stage].discard(id(r))
            self.busy_core_s[r.stage] += cores * service_s
            for req in batch:
                if last:
                    self.done[req] = self.env.now
                else:
                    self.queues[r.stage + 1].append(req)
            if r.removed:
                r.gone = True
                r.charges.append((self.env.now, 0))
            else:
                self.make_idle(r)
                self.dispatch(r.stage)
            if not last:
                self.dispatch(r.stage + 1)
            if r.removed:
                return

    # --- scaling ----------------------------------------------------------------
    def ready_change(self, stage, delta):
        self.ready_log[stage].append((self.env.now, self.ready_log[stage][-1][1] + delta))

    def add(self, stage, cores, ready_now):
        r = Replica(stage, cores, booting=not ready_now, target_cores=cores)
        r.ready_at_s = self.env.now if ready_now else self.env.now + self.config.cold_start_s
        r.charges.append((min(self.env.now, self.horizon_s), cores))
        self.replicas[stage].append(r)
        self.all_replicas.append(r)
        if ready_now:
            self.ready_change(stage, cores)
        self.env.process(self.replica(r))

    def remove(self, r: Replica):
        r.removed = True
        self.replicas[r.stage].remove(r)
        if not r.booting:
            self.ready_change(r.stage, -r.cores)
        if r.idle or r.booting:
            r.gone = True
            r.charges.append((self.env.now, 0))
            if r.idle:
                r.idle = False
                r.wake.succeed((None, 0.0, 0))

    def resize(self, r: Replica, cores):
        r.target_cores = cores
        r.resize_token += 1
        token = r.resize_token

        def land():
            yield self.env.timeout(self.config.resize_s)
            if r.resize_token != token or r.removed:
                return
            if not r.booting:
                self.ready_change(r.stage, cores - r.cores)
            r.cores = cores
            r.charges.append((self.env.now, cores))

        self.env.process(land())

    def apply(self, stage, target: StageAllocation, opening):
        changed = target.batch != self.batch[stage]
        self.batch[stage] = target.batch
        wanted = sorted((g.cores for g in target.groups for _ in range(g.replicas)), reverse=True)
        age = self.all_replicas.index
        serving = sorted(
            (r for r in self.replicas[stage] if not r.booting), key=lambda r: (id(r) not in self.running[stage], age(r))
        )
        booting = sorted((r for r in self.replicas[stage] if r.booting), key=lambda r: (r.ready_at_s, age(r)))
        if len(serving) >= len(wanted):
            unmatched = list(wanted)
            picked = []
            for r in serving:
                if r.target_cores in unmatched:
                    unmatched.remove(r.target_cores)
                    picked.append(r)
            for r in serving:
                if len(picked) < len(wanted) and r not in picked:
                    picked.append(r)
            kept = [r for r in serving if r in picked]
        else:
            kept = serving + booting[: len(wanted) - len(serving)]
        tiers: list[list[Replica]] = []
        for r in kept:
            ready = r.ready_at_s if r.booting else -math.inf
            if tiers and (tiers[-1][0].ready_at_s if tiers[-1][0].booting else -math.inf) == ready:
                tiers[-1].append(r)
            else:
                tiers.append([r])
        to_resize = []
        sizes = list(wanted)
        for tier in tiers:
            mine, sizes = sizes[: len(tier)], sizes[len(tier) :]
            unplaced = []
            for r in tier:
                if r.target_cores in mine:
                    mine.remove(r.target_cores)
                else:
                    unplaced.append(r)
            to_resize += list(zip(unplaced, sorted(mine, reverse=True)))
        to_add = sizes
        to_remove = [r for r in self.replicas[stage] if r not in kept]
        for r, c in to_resize:
            self.resize(r, c)
        for c in to_add:
            self.add(stage, c, ready_now=opening or self.config.cold_start_s == 0)
        to_remove.sort(key=lambda r: (0 if r.booting else (1 if r.idle else 2), self.all_replicas.index(r)))
        for r in to_remove:
            self.remove(r)
        return changed or bool(to_resize or to_add or to_remove)

    def observe(self):
        now = self.env.now
        last_t, last_arrived, last_busy, last_ready = self.last_obs
        views, busy_now, ready_now = [], [], []
        for s in range(len(self.queues)):
            busy = self.busy_core_s[s] + sum(
                r.cores * (now - r.batch_start_s) for r in self.all_replicas if r.stage == s and id(r) in self.running[s]
            )
            log = self.ready_log[s] + [(now, self.ready_log[s][-1][1])]
            ready = sum(c * (t1 - t0) for (t0, c), (t1, _) in zip(log, log[1:]))
            d_ready = ready - last_ready[s]
            util = (busy - last_busy[s]) / d_ready if d_ready > 0 else math.nan
            busy_now.append(busy)
            ready_now.append(ready)
            counts = {}
            for r in self.replicas[s]:
                counts[r.target_cores] = counts.get(r.target_cores, 0) + 1
            ready_counts = {}
            for r in self.replicas[s]:
                if not r.booting:
                    ready_counts[r.target_cores] = ready_counts.get(r.target_cores, 0) + 1
            queue = self.queues[s]
            views.append(
                StageView(
                    groups=tuple(Group(n, c) for c, n in sorted(counts.items())),
                    batch=self.batch[s],
                    ready_replicas=sum(1 for r in self.replicas[s] if not r.booting),
                    queue_len=len(queue),
                    utilisation=util,
                    ready_groups=tuple(Group(n, c) for c, n in sorted(ready_counts.items())),
                    booting=tuple(sorted((r.ready_at_s, r.target_cores) for r in self.replicas[s] if r.booting)),
                    oldest_wait_s=now - float(self.arrivals[queue[0]]) if queue else 0.0,
                )
            )
        self.last_obs = (now, self.arrived, busy_now, ready_now)
        return Observation(now, now - last_t, self.arrived - last_arrived, tuple(views))

    def control(self):
        t = self.controller.first_time_s()
        opening = True
        while math.isfinite(t) and (t <= self.horizon_s or opening):
            # a decision at t comes before every other event at t (a replica that becomes
            # ready at t is still booting when the controller looks): URGENT priority
            wake = self.env.event()
            wake._ok, wake._value = True, None
            self.env.schedule(wake, simpy.events.URGENT, t - self.env.now)
            yield wake
            targets, t_next = self.controller.decide(self.observe())
            for s, target in enumerate(targets):
                if target is not None and self.apply(s, target, opening) and not opening and t >= self.config.warmup_s:
                    self.scale_actions += 1
            opening = False
            t = t_next

    def run(self):
        self.env.process(self.control())
        self.env.process(self.source())
        self.env.run()
        core_s, start = 0.0, self.config.warmup_s
        for r in self.all_replicas:
            charges = r.charges + [(self.horizon_s, 0)]
            for (t0, c), (t1, _) in zip(charges, charges[1:]):
                t0, t1 = min(max(t0, start), self.horizon_s), min(max(t1, start), self.horizon_s)
                core_s += c * max(0.0, t1 - t0)
        return (self.done - self.arrivals) * 1000.0, core_s, self.scale_actions


def simulate_reference(arrivals_s, controller, tables, config, horizon_s):
    """Latencies (ms) per request, core-seconds and scale actions from the SimPy model."""
    return ReferenceModel(arrivals_s, controller, tables, config, horizon_s).run()
