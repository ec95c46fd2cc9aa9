"""`themis` at run time: the planned steps, plus a controller that sizes each stage for what
is about to happen.

Every `check_s` seconds (and at every planned step) the controller looks at each stage:
its queue, the age of the request at its head, the replicas ready (at the cores they have
once resizes under way land) and booting, and the arrivals of the last seconds. From the
plan's surge rule (`Schedule.surge_rules`: the stage's service times by batch and cores,
and its latency budget) it predicts whether the queued and arriving work finishes within
the budget on the capacity in effect (`StageSizer.holds`):

- the queue, plus what arrives faster than the replicas serve until the next check and a
  resize could land, must drain within the budget (a request at the back of that backlog
  waits backlog / capacity and is then served in the batch the backlog makes), and the
  request at the head of the queue must still make it;
- the sustained rate must meet the budget by the queueing estimate
  (`themis.planner.model.queueing`).

Arrival counts are Poisson, so the rate of the last second and its rise since the second
before are read net of two standard deviations of their counts (`Rates`): noise around a
load the plan carries is not a surge, a burst beyond it is, within the second. There is
no margin above capacity: a queue that will drain in time is no surge, one that will not
is.

Reaction time: a second of arrivals beyond what the plan carries is acted on by the
next check after it, within `DEFAULT_SURGE_RATE_WINDOW_S + DEFAULT_SURGE_CHECK_S`
(1.5 s); the resize lands `resize_s` later.

While the planned allocation holds, it is what runs. When it does not, the controller
sizes the stage in one step (`StageSizer.layout`): the fewest cores per replica on the
replicas already ready (any batch; growing them in place lands after `resize_s`) that
carry the predicted rate by the estimate *and* drain, within the budget, the queue built
until the resize lands (a new batch cap applies at once, so until then the replicas run
the candidate's batch at their present cores). If the rate needs more replicas than the stage has, the cheapest
horizontal layout's missing replicas boot at once, so that within one cold start the
stage is repacked onto efficient replicas: when they are ready the same sizing picks the
cheapest layout on them and the grown replicas shrink back (leaving surge mode). A layout
in effect that still holds stays until a cheaper one carries the highest raw rate of the
last `calm_s` seconds, and the controller returns to the plan once the plan's allocation
holds the highest rate of that window and the rate a rise in it was heading for (the
rate it left the plan on): bursts do not make it flap.

The decision logic reads only an `Observation` and the plan, never the simulator, so the
replay server can run the same controller against real replicas.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from themis.planner.model.config import DEFAULT_SURGE_CALM_S, DEFAULT_SURGE_CHECK_S, DEFAULT_SURGE_RATE_WINDOW_S
from themis.planner.model.queueing import estimate_latency_ms, latency_grid_ms
from themis.planner.model.serving import Group, Schedule, StageAllocation, SurgeRule
from themis.planner.simulation.controllers.schedule import ScheduleController, schedule_resources
from themis.planner.simulation.observation import Observation, StageView

LOAD_STEP = 0.01
LOAD_FLOOR_RPS = 1e-3


def _level(load_rps: float) -> int:
    """Index of the smallest load of the 1 % grid at or above `load_rps`."""
    return math.ceil(math.log(max(load_rps, LOAD_FLOOR_RPS) / LOAD_FLOOR_RPS) / math.log1p(LOAD_STEP) - 1e-9)


@dataclass(frozen=True)
class Rates:
    """A stage's arrival rates (stage load, rps) as the controller estimates them."""

    now_rps: float
    """Over the last second: what a backlog grows with until a resize lands."""
    burst_rps: float
    """The last second's rate as a burst detector: its count less two Poisson standard
    deviations (a measurement's noise, so that noise around a load the replicas carry
    does not read as a burst; a burst beyond them still does within the second)."""
    rising_rps: float
    """`burst_rps` plus the rise of the count since the second before, less two standard
    deviations of that difference: where a ramp is heading."""
    sustained_rps: float
    """Over the last `calm_s` seconds: the rate the queueing estimate (a Poisson stream,
    its noise included) must hold."""
    predicted_rps: float
    """What a surge layout is sized for: the highest `rising_rps` of the last `calm_s`
    seconds (the rate a ramp reaches by the time a resize lands), at least the sustained
    rate."""
    calm_rps: float
    """The highest of the sustained and burst rates over the last `calm_s` seconds: what
    the plan must hold before the controller returns to it."""
    peak_rps: float
    """The highest rate over a second in the last `calm_s` seconds, undiscounted: what a
    smaller surge layout must carry before the controller shrinks to it."""

    def scaled(self, factor: float) -> Rates:
        return Rates(*(factor * x for x in (
            self.now_rps, self.burst_rps, self.rising_rps, self.sustained_rps, self.predicted_rps, self.calm_rps, self.peak_rps
        )))


@dataclass(frozen=True)
class Layout:
    """A homogeneous layout: replicas x cores at a batch."""

    replicas: int
    cores: int
    batch: int


class StageSizer:
    """The sizing arithmetic of one stage from its surge rule (pure, no state)."""

    def __init__(self, rule: SurgeRule, quantile: float, resize_s: float, check_s: float) -> None:
        self.rule = rule
        self.quantile = quantile
        self.resize_s = resize_s
        self.horizon_s = check_s + resize_s
        self.table = rule.service_table_ms()
        self.slowest = np.vstack([self.table[:1], np.maximum.accumulate(self.table[1:], axis=0)])
        """slowest[k, j]: the slowest batch of up to k on cores[j]."""
        self.cores = rule.cores
        self.column = {c: j for j, c in enumerate(rule.cores)}
        kb = [(c, b) for c in rule.cores for b in rule.batches if self.table[b, self.column[c]] < rule.budget_ms]
        self.k_cores = np.array([c for c, _ in kb], dtype=np.int64)
        self.k_batch = np.array([b for _, b in kb], dtype=np.int64)
        self.k_service_ms = np.array([self.table[:, self.column[c]] for c, _ in kb]).reshape(len(kb), self.table.shape[0])
        self.k_full_ms = np.array([self.table[b, self.column[c]] for c, b in kb])
        self.k_slowest_ms = np.array([np.nanmax(self.table[1 : b + 1, self.column[c]]) for c, b in kb])
        self.replicas = np.arange(1, rule.max_replicas + 1)
        self._estimates: dict[tuple[tuple[Group, ...], int, int], float] = {}
        self._grids: dict[int, np.ndarray] = {}

    def capacity_rps(self, groups: tuple[Group, ...], batch: int) -> float:
        return sum(g.replicas * batch * 1000.0 / self.table[batch, self.column[g.cores]] for g in groups if g.replicas > 0)

    def estimate_ms(self, groups: tuple[Group, ...], batch: int, load_rps: float) -> float:
        """The queueing estimate at the load rounded up to a 1 % grid (never optimistic;
        cached, since a controller asks the same question every check)."""
        level = _level(load_rps)
        key = (groups, batch, level)
        if key not in self._estimates:
            tables = [(g.replicas, self.table[:, self.column[g.cores]]) for g in groups if g.replicas > 0]
            self._estimates[key] = estimate_latency_ms(tables, batch, LOAD_FLOOR_RPS * (1 + LOAD_STEP) ** level, self.quantile)
        return self._estimates[key]

    def holds(self, groups: tuple[Group, ...], batch: int, view: StageView, growth_rps: float, rate_rps: float) -> bool:
        """Does the work queued and arriving finish within the budget on `groups` (in
        effect)? The queue grows at `growth_rps` beyond their capacity until the next check
        and a resize could land; the queueing estimate must hold the sustained `rate_rps`."""
        capacity = self.capacity_rps(groups, batch)
        if capacity <= 0:
            return view.queue_len == 0 and growth_rps <= 0
        backlog = max(0.0, view.queue_len + (growth_rps - capacity) * self.horizon_s)
        # the batches that backlog makes the replicas take: about backlog / replicas each
        replicas = sum(g.replicas for g in groups)
        batch_k = int(min(batch, max(1, math.ceil(backlog / replicas))))
        service_ms = max(self.slowest[batch_k, self.column[g.cores]] for g in groups if g.replicas > 0)
        latest_ms = 1000.0 * backlog / capacity + service_ms
        head_ms = 1000.0 * view.oldest_wait_s + service_ms
        return max(latest_ms, head_ms) <= self.rule.budget_ms and self.estimate_ms(groups, batch, rate_rps) <= self.rule.budget_ms

    def layout(self, ready: int, view: StageView, rates: Rates, serving: tuple[Group, ...], rate_rps: float) -> Layout | None:
        """The fewest cores per replica on the `ready` replicas (all resized to one size, any
        batch) that carry `rate_rps` by the estimate and drain, within the budget, the
        backlog built until a resize lands (`serving` carries the load meanwhile); None if
        none does."""
        if ready <= 0 or self.k_cores.size == 0 or ready > self.rule.max_replicas:
            return None
        latency = self._grid(rate_rps)[:, ready - 1]
        capacity = ready * self.k_batch * 1000.0 / self.k_full_ms
        # the backlog when the resize lands; its last request arrives then, waits for it to
        # drain at the new capacity, and is served. A new batch cap applies at once, new
        # cores only when the resize lands: until then `serving` runs the candidate's batch
        # at its present cores (dropping to a small batch would cut the capacity in effect)
        backlog = np.maximum(0.0, view.queue_len + (rates.now_rps - self.capacity_at_batches(serving)) * self.resize_s)
        # and, as `holds` asks of any layout in effect, the queue it would have once the
        # load rises on over a check and a resize delay
        ahead = np.maximum(0.0, view.queue_len + (rates.rising_rps - capacity) * self.horizon_s)
        drain_ms = 1000.0 * np.maximum(backlog, ahead) / capacity + self.k_slowest_ms
        ok = (latency <= self.rule.budget_ms) & (drain_ms <= self.rule.budget_ms)
        if not ok.any():
            return None
        # fewest cores; among those, the most room under the budget
        k = min(np.flatnonzero(ok), key=lambda i: (self.k_cores[i], max(latency[i], drain_ms[i])))
        return Layout(ready, int(self.k_cores[k]), int(self.k_batch[k]))

    def capacity_at_batches(self, groups: tuple[Group, ...]) -> np.ndarray:
        """Capacity (rps) of `groups` at their present cores at each candidate's batch, (K,)."""
        total = np.zeros(self.k_batch.size)
        for g in groups:
            if g.replicas > 0:
                total += g.replicas * self.k_batch * 1000.0 / self.table[self.k_batch, self.column[g.cores]]
        return total

    def _grid(self, load_rps: float) -> np.ndarray:
        """Estimates (candidate, replicas) at the load rounded up to a 1 % grid, cached."""
        level = _level(load_rps)
        if level not in self._grids:
            load = LOAD_FLOOR_RPS * (1 + LOAD_STEP) ** level
            self._grids[level] = latency_grid_ms(np.array([load]), self.k_service_ms, self.k_batch, self.rule.max_replicas, self.quantile)[0]
        return self._grids[level]

    def fastest(self, ready: int) -> Layout:
        """The most capacity `ready` replicas have: the node's cores and the batch carrying most."""
        cores = self.cores[-1]
        j = self.column[cores]
        batch = max(self.rule.batches, key=lambda b: (b / self.table[b, j] if self.table[b, j] < self.rule.budget_ms else 0.0, -b))
        return Layout(ready, cores, batch)

    def horizontal(self, rate_rps: float) -> Layout | None:
        """The cheapest homogeneous layout (any replicas up to the rule's maximum) for a rate."""
        latency = self._grid(rate_rps)
        ok = latency <= self.rule.budget_ms
        if not ok.any():
            return None
        cost = np.where(ok, self.k_cores[:, None] * self.replicas[None, :], np.inf)
        k, r = np.unravel_index(int(np.argmin(np.where(cost == cost.min(), latency, np.inf))), cost.shape)
        return Layout(int(r) + 1, int(self.k_cores[k]), int(self.k_batch[k]))


class ArrivalHistory:
    """Entrance arrivals over the last seconds, from each observation's count."""

    def __init__(self, window_s: float, calm_s: float) -> None:
        self.window_s = window_s
        self.calm_s = max(calm_s, window_s)
        self._counts: deque[tuple[float, int]] = deque()
        """(time, cumulative arrivals), as far back as `calm_s` plus a window."""
        self._rates: deque[tuple[float, float, float, float]] = deque()
        """(time, max(sustained, burst), rising, raw rate) at each observation, as far back as `calm_s`."""
        self._arrived = 0
        self._first_s: float | None = None
        """When the first observation came: a rise needs two full windows seen."""

    def record(self, obs: Observation) -> Rates:
        self._arrived += obs.arrivals
        now = obs.now_s
        if self._first_s is None:
            self._first_s = now
        self._counts.append((now, self._arrived))
        while len(self._counts) > 2 and self._counts[1][0] <= now - self.calm_s - self.window_s + 1e-9:
            self._counts.popleft()
        rate = self._rate(now, self.window_s)
        before = self._rate(now - self.window_s, self.window_s)
        sustained = self._rate(now, self.calm_s)
        count, previous = rate * self.window_s, before * self.window_s
        # counts are Poisson: discount two standard deviations before reading a level or a
        # rise into them, so that noise around a load the replicas carry is no burst
        burst = max(0.0, count - 2.0 * math.sqrt(count)) / self.window_s
        seen_s = now - self._first_s if self._first_s is not None else 0.0
        rise = max(0.0, count - previous - 2.0 * math.sqrt(count + previous)) / self.window_s if seen_s >= 2 * self.window_s - 1e-9 else 0.0
        self._rates.append((now, max(sustained, burst), burst + rise, rate))
        while self._rates[0][0] < now - self.calm_s - 1e-9:
            self._rates.popleft()
        return Rates(
            now_rps=rate,
            burst_rps=burst,
            rising_rps=burst + rise,
            sustained_rps=sustained,
            predicted_rps=max(max(p for _, _, p, _ in self._rates), sustained),
            calm_rps=max(r for _, r, _, _ in self._rates),
            peak_rps=max(r for _, _, _, r in self._rates),
        )

    def _rate(self, end_s: float, window_s: float) -> float:
        """Arrivals per second over (end_s - window_s, end_s], from the recorded counts."""
        at_end = self._count_at(end_s)
        start = self._count_at(end_s - window_s)
        if at_end is None or start is None or at_end[0] <= start[0]:
            return 0.0
        return (at_end[1] - start[1]) / max(at_end[0] - start[0], window_s)

    def _count_at(self, t_s: float) -> tuple[float, int] | None:
        """The last record at or before t_s (the first one when none is that old)."""
        found = None
        for record in self._counts:
            if record[0] <= t_s + 1e-9:
                found = record
            else:
                break
        return found if found is not None else (self._counts[0] if self._counts else None)


@dataclass
class SurgeController:
    """themis at run time: the planned steps plus one-step sizing of surges (module docstring)."""

    schedule: Schedule
    check_s: float = DEFAULT_SURGE_CHECK_S
    calm_s: float = DEFAULT_SURGE_CALM_S
    policy: str = "themis"
    plan: ScheduleController = field(init=False)
    surges: int = field(init=False, default=0)
    """Decisions at which a stage left the plan for a sized layout."""

    def __post_init__(self) -> None:
        if self.check_s <= 0 or self.calm_s < 0:
            raise ValueError("check_s must be positive and calm_s not negative")
        if len(self.schedule.surge_rules) != len(self.schedule.stages):
            raise ValueError("a surge controller needs one surge rule per stage")
        self.plan = ScheduleController(self.schedule)
        self.horizon_s = self.plan.horizon_s
        self.stages = self.schedule.stages
        self.prices = self.schedule.prices
        self.trace_start = self.schedule.trace_start
        quantile = self.schedule.percentile / 100.0
        self.sizers = [StageSizer(rule, quantile, self.schedule.resize_s, self.check_s) for rule in self.schedule.surge_rules]
        self.requested: list[StageAllocation | None] = [None] * len(self.stages)
        """Per stage, the layout the controller asks for instead of the plan (None: the plan)."""
        self.history = ArrivalHistory(DEFAULT_SURGE_RATE_WINDOW_S, self.calm_s)

    def resources(self) -> tuple[set[int], int]:
        cores, batch = schedule_resources(self.schedule)
        for rule in self.schedule.surge_rules:
            cores |= set(rule.cores)
            batch = max(batch, max(rule.batches))
        return cores, batch

    def first_time_s(self) -> float:
        return self.plan.first_time_s()

    def decide(self, obs: Observation) -> tuple[list[StageAllocation | None], float]:
        next_step_s = self.plan.next_start_s(obs.now_s)
        next_check_s = obs.now_s + self.check_s
        upcoming = min(next_step_s, next_check_s if next_check_s < self.horizon_s else math.inf)
        at_step = self.plan.is_start(obs.now_s)
        planned = self.schedule.steps[self.plan.step_index(obs.now_s)].stages
        entrance = self.history.record(obs)
        targets: list[StageAllocation | None] = []
        for s, (view, sizer) in enumerate(zip(obs.stages, self.sizers)):
            ratio = self.stages[s].visit_ratio
            rates = entrance.scaled(ratio)
            before = self.requested[s]
            wanted = self._stage_target(view, sizer, before, rates, planned[s], obs.now_s)
            self.requested[s] = None if wanted is planned[s] else wanted
            if before is None and self.requested[s] is not None:
                self.surges += 1
            changed = at_step or not wanted.same_resources(before if before is not None else planned[s])
            targets.append(wanted if changed else None)
        return targets, upcoming

    def _stage_target(
        self,
        view: StageView,
        sizer: StageSizer,
        requested: StageAllocation | None,
        rates: Rates,
        planned: StageAllocation,
        now_s: float,
    ) -> StageAllocation:
        """The plan's allocation while it holds; otherwise the layout sized now."""
        soon_s = now_s + sizer.resize_s
        serving = _serving_soon(view, soon_s)
        ready = sum(g.replicas for g in serving)
        # following the plan, it must hold what is arriving now; to return to it, the
        # highest rate of the last `calm_s` seconds and where a ramp in that window was
        # heading (the rate that left it: a surge is not undone half a second later)
        if requested is None:
            holds = sizer.holds(_in_effect(planned, ready), planned.batch, view, rates.rising_rps, max(rates.sustained_rps, rates.burst_rps))
        else:
            holds = sizer.holds(_in_effect(planned, ready), planned.batch, view, max(rates.calm_rps, rates.predicted_rps), rates.calm_rps)
        if holds:
            return planned
        fit = sizer.layout(ready, view, rates, serving, rates.predicted_rps) or sizer.fastest(max(ready, 1))
        if requested is not None and serving:
            cores_now = sum(g.total_cores for g in serving)
            if fit.replicas * fit.cores < cores_now:
                # shrinking: the smaller layout must carry the highest raw rate of the last
                # `calm_s` seconds (growing reads rates net of noise; shrinking does not)
                fit = sizer.layout(ready, view, rates, serving, max(rates.predicted_rps, rates.peak_rps)) or fit
            if fit.replicas * fit.cores >= cores_now and sizer.holds(
                serving, view.batch, view, rates.rising_rps, max(rates.sustained_rps, rates.burst_rps)
            ):
                return requested  # the layout in effect still holds and nothing cheaper does: keep it
        groups = [Group(fit.replicas, fit.cores)]
        booting = [min(c, fit.cores) for t, c in view.booting if t > soon_s]
        wide = sizer.horizontal(rates.predicted_rps)
        if wide is not None and wide.cores < fit.cores and wide.replicas > fit.replicas + len(booting):
            # the grown replicas are a stopgap: boot the cheapest horizontal layout's
            # missing replicas now, so that it is ready to repack onto within a cold start
            booting += [wide.cores] * (wide.replicas - fit.replicas - len(booting))
        groups += [Group(1, c) for c in booting]
        return StageAllocation(_merged(groups), fit.batch, planned.device)


def _merged(groups: list[Group]) -> tuple[Group, ...]:
    counts: dict[int, int] = {}
    for g in groups:
        if g.replicas > 0:
            counts[g.cores] = counts.get(g.cores, 0) + g.replicas
    return tuple(Group(n, c) for c, n in sorted(counts.items(), reverse=True))


def _in_effect(target: StageAllocation, ready: int) -> tuple[Group, ...]:
    """The groups of `target` that `ready` replicas serve once it is requested: the serving
    replicas take the largest sizes (`themis.planner.model.transitions`)."""
    sizes = sorted((g.cores for g in target.groups for _ in range(g.replicas)), reverse=True)[:ready]
    return _merged([Group(1, c) for c in sizes])


def _serving_soon(view: StageView, soon_s: float) -> tuple[Group, ...]:
    """The replicas serving within a resize delay, at the cores they will have."""
    return _merged([*view.ready_groups, *(Group(1, c) for t, c in view.booting if t <= soon_s)])
