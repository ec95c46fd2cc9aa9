"""What every planning policy shares: the candidate space of each stage, the per-interval
solver (DP over stages, cached per load level), the replica fleet with its delays, and
the loop that steps a policy through the intervals.

A policy is a module with `OFFLINE` (may it see the future?), `initial_state(setup)` and a
pure `decide(ctx, state) -> (allocations, state)` (Ray Serve's autoscaling-policy shape):
it gets the interval's context and its own previous state, and returns what each stage
requests at the start of the interval. Online policies get no future in their context.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from themis.planner import dp
from themis.planner.latency import LatencyModel
from themis.planner.queueing import (
    batch_stats_ms,
    latency_from_stats_ms,
    latency_grid_ms,
)
from themis.planner.serving import Group, Stage, StageAllocation, unit_price_per_hour

if TYPE_CHECKING:
    from themis.planner.plan import PlanConfig


# --------------------------------------------------------------------------- candidate space


@dataclass(frozen=True)
class SizeOption:
    """One replica size of a stage: a device and its cores (1 for a GPU), with its price."""

    device: str
    cores: int
    cost_per_hour: float
    service_ms: np.ndarray
    """service_ms[k]: median ms of a batch of k (index 0 unused)."""


def price_of(model: LatencyModel, cores: int, config: PlanConfig) -> float | None:
    """Objective weight per replica-hour: money when any price is given, else cores (a GPU
    counts 1). None when a GPU has no price while prices are in use (not comparable)."""
    priced = config.price_per_core_hour > 0 or bool(config.price_per_gpu_hour)
    if not priced:
        return 1.0 if model.is_gpu else float(cores)
    price = unit_price_per_hour(model.device, config.price_per_core_hour, config.price_per_gpu_hour)
    return None if price is None else price * (1 if model.is_gpu else cores)


class StageSpace:
    """Every homogeneous allocation of one stage: option x batch x replicas (1..R).

    Candidate k = (option, batch) is flattened; arrays are (K,) or (K, R). Latency grids
    per load level are computed on demand and cached.
    """

    def __init__(self, stage: Stage, models: Sequence[LatencyModel], config: PlanConfig) -> None:
        self.stage = stage
        self.batches = tuple(sorted(set(int(b) for b in config.batch_sizes)))
        self.max_replicas = int(config.max_replicas)
        self.quantile = config.percentile / 100.0
        max_batch = self.batches[-1]
        options: list[SizeOption] = []
        for model in models:
            cores_options = (1,) if model.is_gpu else config.node_cores()
            table = model.service_table_ms(max_batch, cores_options)
            for j, cores in enumerate(cores_options):
                price = price_of(model, cores, config)
                if price is not None:
                    options.append(SizeOption(model.device, int(cores), price, table[:, j]))
        self.options = tuple(options)
        self.option_of = {(o.device, o.cores): i for i, o in enumerate(options)}
        stats = [(i, b, *batch_stats_ms(o.service_ms, b)) for i, o in enumerate(options) for b in self.batches]
        self.k_option = np.array([s[0] for s in stats], dtype=np.int64)
        self.k_batch = np.array([s[1] for s in stats], dtype=float)
        self.k_full_ms = np.array([s[2] for s in stats])
        self.k_max_ms = np.array([s[3] for s in stats])
        self.k_item_ms = np.array([s[4] for s in stats])
        self.k_cores = np.array([options[i].cores for i in self.k_option], dtype=np.int64)
        replicas = np.arange(1, self.max_replicas + 1)
        self.cost_per_hour = np.array([options[i].cost_per_hour for i in self.k_option])[:, None] * replicas[None, :]
        self.capacity_rps = replicas[None, :] * (self.k_batch * 1000.0 / self.k_full_ms)[:, None]
        self._grids: dict[int, np.ndarray] = {}
        self._stats_cache: dict[tuple[str, int, int], tuple[float, float, float]] = {}

    @property
    def n_candidates(self) -> int:
        return len(self.k_option)

    def grids(self, levels: Sequence[int], loads_rps: np.ndarray) -> list[np.ndarray]:
        """Latency grids (K, R) for load levels, computing the missing ones in one pass."""
        missing = [i for i, lv in enumerate(levels) if lv not in self._grids]
        for start in range(0, len(missing), 64):
            chunk = missing[start : start + 64]
            grid = latency_grid_ms(
                loads_rps[chunk], self.k_full_ms, self.k_max_ms, self.k_item_ms, self.k_batch, self.max_replicas, self.quantile
            )
            for j, i in enumerate(chunk):
                self._grids[levels[i]] = grid[j]
        return [self._grids[lv] for lv in levels]

    def allocation(self, k: int, replicas: int, load_rps: float) -> StageAllocation:
        """The homogeneous allocation of candidate k with `replicas`, estimated at load_rps."""
        option = self.options[self.k_option[k]]
        groups = (Group(int(replicas), option.cores),)
        return self.describe(groups, int(self.k_batch[k]), option.device, load_rps)

    def describe(self, groups: tuple[Group, ...], batch: int, device: str, load_rps: float) -> StageAllocation:
        """A StageAllocation with its estimate (latency, capacity) once fully in effect."""
        latency, capacity = self.estimate(groups, batch, device, load_rps)
        return StageAllocation(groups=groups, batch=batch, device=device, est_latency_ms=latency, capacity_rps=capacity)

    def estimate(self, groups: Sequence[Group], batch: int, device: str, load_rps: float) -> tuple[float, float]:
        """(q-latency ms, capacity rps) of any allocation of this stage, heterogeneous or not."""
        stats = [(g.replicas, *self._stats(device, g.cores, batch)) for g in groups if g.replicas > 0]
        capacity = sum(r * batch * 1000.0 / full for r, full, _, _ in stats)
        return latency_from_stats_ms(stats, batch, load_rps, self.quantile), float(capacity)

    def _stats(self, device: str, cores: int, batch: int) -> tuple[float, float, float]:
        key = (device, cores, batch)
        if key not in self._stats_cache:
            self._stats_cache[key] = batch_stats_ms(self.options[self.option_of[(device, cores)]].service_ms, batch)
        return self._stats_cache[key]


# --------------------------------------------------------------------------- per-interval solver


@dataclass(frozen=True)
class Restriction:
    """Which homogeneous candidates a stage may use: fixed cores, fixed replicas, or one
    exact (candidate, replicas) pair. None means free."""

    cores: int | None = None
    replicas: int | None = None
    exact: tuple[int, int] | None = None


FREE = Restriction()


class IntervalSolver:
    """min cost s.t. latency <= SLO at one load, over all stages, cached per load level.

    Loads are rounded *up* to a geometric grid (relative step `load_step`) so that nearby
    loads share one solve; the stage load is the entrance load x the stage's visit ratio.
    """

    def __init__(self, spaces: Sequence[StageSpace], config: PlanConfig) -> None:
        self.spaces = tuple(spaces)
        self.slo_ms = float(config.slo_ms)
        self.budget_units = int(config.latency_units)
        self.log_step = math.log1p(config.load_step)
        self.min_load_rps = 1e-3
        self._masks: dict[tuple[int, Restriction], np.ndarray] = {}
        self._levels: dict[float, int] = {}
        self._solutions: dict[tuple[int, tuple[Restriction, ...]], tuple[tuple[int, int], ...] | None] = {}
        self._allocations: dict[tuple[int, tuple[tuple[int, int], ...]], tuple[StageAllocation, ...]] = {}
        self._estimates: dict[tuple[Any, ...], float] = {}

    def level(self, load_rps: float) -> int:
        """Index of the smallest grid load >= load_rps."""
        level = self._levels.get(load_rps)
        if level is None:
            level = int(math.ceil(math.log(max(load_rps, self.min_load_rps) / self.min_load_rps) / self.log_step - 1e-9))
            self._levels[load_rps] = level
        return level

    def levels(self, loads_rps: np.ndarray) -> np.ndarray:
        """`level` of many loads at once."""
        loads = np.maximum(np.asarray(loads_rps, dtype=float), self.min_load_rps)
        return np.ceil(np.log(loads / self.min_load_rps) / self.log_step - 1e-9).astype(np.int64)

    def level_load(self, level: int) -> float:
        return self.min_load_rps * math.exp(level * self.log_step)

    def prepare(self, loads_rps: np.ndarray) -> None:
        """Compute the latency grids of every level these loads touch, vectorised."""
        loads = np.asarray(loads_rps, dtype=float)
        levels = np.unique(self.levels(loads[np.isfinite(loads)])).tolist()
        base = np.array([self.level_load(lv) for lv in levels])
        for space in self.spaces:
            space.grids(levels, base * space.stage.visit_ratio)

    def _mask(self, j: int, rule: Restriction) -> np.ndarray:
        key = (j, rule)
        if key not in self._masks:
            space = self.spaces[j]
            mask = np.ones((space.n_candidates, space.max_replicas), dtype=bool)
            if rule.cores is not None:
                mask &= (space.k_cores == rule.cores)[:, None]
            if rule.replicas is not None:
                mask &= (np.arange(1, space.max_replicas + 1) == rule.replicas)[None, :]
            if rule.exact is not None:
                mask[:] = False
                mask[rule.exact[0], rule.exact[1] - 1] = True
            self._masks[key] = mask
        return self._masks[key]

    def solve(self, load_rps: float, rules: Sequence[Restriction] | None = None) -> tuple[tuple[int, int], ...] | None:
        """Per stage (candidate k, replicas) of the cheapest plan meeting the SLO, or None."""
        rules = tuple(rules) if rules is not None else (FREE,) * len(self.spaces)
        level = self.level(load_rps)
        key = (level, rules)
        if key not in self._solutions:
            self._solutions[key] = self._solve_level(level, rules)
        return self._solutions[key]

    def _solve_level(self, level: int, rules: tuple[Restriction, ...]) -> tuple[tuple[int, int], ...] | None:
        load = self.level_load(level)
        lat, costs = [], []
        for j, (space, rule) in enumerate(zip(self.spaces, rules)):
            grid = space.grids([level], np.array([load * space.stage.visit_ratio]))[0]
            mask = self._mask(j, rule)
            lat.append(np.where(mask, grid, np.inf).ravel())
            costs.append(np.where(mask, space.cost_per_hour, np.inf).ravel())
        if len(self.spaces) == 1:
            solution = dp.solve_one_stage(lat[0], costs[0], self.slo_ms)
        else:
            units = [dp.latency_units(x, self.slo_ms, self.budget_units) for x in lat]
            solution = dp.solve_stages(units, costs, self.budget_units)
        if not solution.feasible:
            return None
        return tuple(_pair(int(i), space.max_replicas) for i, space in zip(solution.choice, self.spaces))

    def fastest(self, load_rps: float, rules: Sequence[Restriction] | None = None) -> tuple[tuple[int, int], ...]:
        """Best effort when nothing meets the SLO: per stage the lowest estimated latency
        (ties: the most capacity) among the allowed candidates."""
        rules = tuple(rules) if rules is not None else (FREE,) * len(self.spaces)
        level = self.level(load_rps)
        load = self.level_load(level)
        out = []
        for j, (space, rule) in enumerate(zip(self.spaces, rules)):
            grid = space.grids([level], np.array([load * space.stage.visit_ratio]))[0]
            mask = self._mask(j, rule)
            lat = np.where(mask, grid, np.inf).ravel()
            cap = np.where(mask, space.capacity_rps, -np.inf).ravel()
            out.append(_pair(int(np.lexsort((-cap, lat))[0]), space.max_replicas))
        return tuple(out)

    def allocations(self, choice: Sequence[tuple[int, int]], load_rps: float) -> tuple[StageAllocation, ...]:
        """StageAllocations of (candidate, replicas) per stage, estimated at the entrance load
        rounded up to its level (so the estimate is never optimistic)."""
        key = (self.level(load_rps), tuple(choice))
        if key not in self._allocations:
            load = self.level_load(key[0])
            self._allocations[key] = tuple(
                space.allocation(k, r, load * space.stage.visit_ratio) for space, (k, r) in zip(self.spaces, choice)
            )
        return self._allocations[key]

    def describe(self, j: int, groups: tuple[Group, ...], batch: int, device: str, load_rps: float) -> StageAllocation:
        """Stage j's allocation with its estimate at the entrance load (rounded up to its level)."""
        level = self.level(load_rps)
        space = self.spaces[j]
        return space.describe(groups, batch, device, self.level_load(level) * space.stage.visit_ratio)

    def estimate(self, j: int, groups: tuple[Group, ...], batch: int, device: str, load_rps: float) -> float:
        """Stage j's estimated q-latency at the entrance load (rounded up), cached."""
        key = (j, groups, batch, device, self.level(load_rps))
        if key not in self._estimates:
            space = self.spaces[j]
            self._estimates[key] = space.estimate(groups, batch, device, self.level_load(key[4]) * space.stage.visit_ratio)[0]
        return self._estimates[key]


def _pair(flat_index: int, max_replicas: int) -> tuple[int, int]:
    """(candidate, replicas) of a flattened (K, R) index."""
    k, r = divmod(flat_index, max_replicas)
    return k, r + 1


# --------------------------------------------------------------------------- fleet and delays


@dataclass(frozen=True)
class Cohort:
    """`replicas` replicas of `cores` cores that serve from interval `ready_step` on."""

    replicas: int
    cores: int
    ready_step: int


def apply_request(fleet: tuple[Cohort, ...], groups: Sequence[Group], step: int, cold_steps: int) -> tuple[Cohort, ...]:
    """The fleet after requesting `groups` at `step`.

    The readiest replicas are kept (removals take the newest); new ones are ready
    `cold_steps` later. The largest sizes go to the readiest replicas (as the simulator
    does: capacity arrives now, new replicas boot at the remaining sizes). Resizes take
    effect within the interval (resize_s is far below an interval).
    """
    groups = sorted(groups, key=lambda g: -g.cores)
    ready_runs: list[list[int]] = []  # [ready_step, count], readiest first
    for cohort in sorted(fleet, key=lambda x: x.ready_step):
        if ready_runs and ready_runs[-1][0] == cohort.ready_step:
            ready_runs[-1][1] += cohort.replicas
        else:
            ready_runs.append([cohort.ready_step, cohort.replicas])
    have = sum(n for _, n in ready_runs)
    wanted = sum(g.replicas for g in groups)
    if wanted > have:
        ready_runs.append([step + cold_steps, wanted - have])
    out: list[Cohort] = []
    run = 0
    for group in groups:
        need = group.replicas
        while need > 0:
            ready_step, count = ready_runs[run]
            take = min(need, count)
            out.append(Cohort(take, group.cores, ready_step))
            need -= take
            ready_runs[run][1] -= take
            if ready_runs[run][1] == 0:
                run += 1
    return tuple(out)


def ready_groups(fleet: tuple[Cohort, ...], step: int) -> tuple[Group, ...]:
    """The replicas serving at `step`, grouped by cores (first-seen order)."""
    counts: dict[int, int] = {}
    for cohort in fleet:
        if cohort.ready_step <= step:
            counts[cohort.cores] = counts.get(cohort.cores, 0) + cohort.replicas
    return tuple(Group(n, c) for c, n in counts.items())


# --------------------------------------------------------------------------- the policy loop


@dataclass(frozen=True)
class PolicySetup:
    """What a policy may look at once, before the first interval."""

    solver: IntervalSolver
    config: PlanConfig
    planning_loads_rps: np.ndarray
    """Per interval: forecast (or the opening observed peak) x headroom; online policies use
    an element only from its own interval on."""
    actual_peaks_rps: np.ndarray | None
    """The trace's real peaks: offline policies (static, oracle) only."""
    observed_peaks_rps: np.ndarray
    """The same peaks, handed to each interval's context only from the past (`observed_rps`)."""


@dataclass(frozen=True)
class StepContext:
    """What a policy sees at the start of interval `step`."""

    step: int
    load_rps: float
    """Planning load of this interval (forecast x headroom)."""
    held_load_rps: float
    """Max planning load over the scale-down window: capacity is not released before."""
    observed_rps: float
    """The real peak of the previous interval (x headroom): past data, so online policies may
    react to it (interval 0: its own opening peak, the initial condition)."""
    ready: tuple[tuple[Group, ...], ...]
    """Per stage, replicas serving at the start of the interval."""
    current: tuple[StageAllocation, ...] | None
    solver: IntervalSolver
    config: PlanConfig
    cold_steps: int
    future_peaks_rps: np.ndarray | None = None
    """Actual peaks from this interval on: offline policies only."""


@dataclass
class PolicyRun:
    allocations: list[tuple[StageAllocation, ...]] = field(default_factory=list)
    infeasible_steps: list[int] = field(default_factory=list)
    serving: list[tuple[tuple[Group, ...], ...]] = field(default_factory=list)
    """Per interval and stage, the groups actually serving (delays applied)."""
    state: Any = None


class FleetTracker:
    """Every stage's fleet over time: what was requested, what is serving.

    Re-requesting the same groups leaves a fleet unchanged (`apply_request` is idempotent),
    and the serving groups only change when a request changes or a cohort becomes ready;
    both shortcuts keep long horizons cheap.
    """

    def __init__(self, stages: int, cold_steps: int) -> None:
        self.cold_steps = cold_steps
        self.fleets: list[tuple[Cohort, ...]] = [() for _ in range(stages)]
        self.requested: list[tuple[Group, ...] | None] = [None] * stages
        self._serving: list[tuple[Group, ...]] = [() for _ in range(stages)]
        self._settled_from: list[int] = [0] * stages

    def request(self, step: int, allocations: Sequence[StageAllocation]) -> None:
        for j, alloc in enumerate(allocations):
            if alloc.groups == self.requested[j]:
                continue
            # the opening allocation is provisioned already (COMMON: initial condition)
            self.fleets[j] = apply_request(self.fleets[j], alloc.groups, step, 0 if step == 0 else self.cold_steps)
            self.requested[j] = alloc.groups
            self._settled_from[j] = -1

    def serving(self, step: int) -> tuple[tuple[Group, ...], ...]:
        for j, fleet in enumerate(self.fleets):
            if self._settled_from[j] < 0 or step <= self._settled_from[j]:
                self._serving[j] = ready_groups(fleet, step)
                self._settled_from[j] = max((c.ready_step for c in fleet), default=0)
        return tuple(self._serving)


def run_policy(
    decide: Callable[[StepContext, Any], tuple[tuple[StageAllocation, ...], Any]],
    state: Any,
    setup: PolicySetup,
    *,
    offline: bool,
) -> PolicyRun:
    """Step `decide` through every interval, tracking the fleet and the hysteresis window."""
    config = setup.config
    loads = setup.planning_loads_rps
    cold_steps = int(math.ceil(config.cold_start_s / config.interval_s - 1e-9))
    hold = max(1, int(math.ceil(config.scale_down_delay_s / config.interval_s - 1e-9)))
    held = _running_max(loads, hold)
    peaks = setup.observed_peaks_rps
    observed = np.r_[peaks[:1], peaks[:-1]] * config.headroom
    fleet = FleetTracker(len(setup.solver.spaces), cold_steps)
    run = PolicyRun()
    current = None
    ready = fleet.serving(0)
    for i in range(len(loads)):
        ctx = StepContext(
            step=i,
            load_rps=float(loads[i]),
            held_load_rps=float(held[i]),
            observed_rps=float(observed[i]),
            ready=ready,
            current=current,
            solver=setup.solver,
            config=config,
            cold_steps=cold_steps,
            future_peaks_rps=setup.actual_peaks_rps[i:] if offline and setup.actual_peaks_rps is not None else None,
        )
        allocs, state = decide(ctx, state)
        fleet.request(i, allocs)
        run.serving.append(fleet.serving(i))
        if i + 1 < len(loads):
            ready = fleet.serving(i + 1)
        if sum(a.est_latency_ms for a in allocs) > config.slo_ms + 1e-9:
            run.infeasible_steps.append(i)
        run.allocations.append(allocs)
        current = allocs
    run.state = state
    return run


def _running_max(values: np.ndarray, window: int) -> np.ndarray:
    """out[i] = max(values[i - window + 1 .. i])."""
    from numpy.lib.stride_tricks import sliding_window_view

    padded = np.r_[np.full(window - 1, -np.inf), np.asarray(values, dtype=float)]
    return sliding_window_view(padded, window).max(axis=1)


def choose(ctx: StepContext, load_rps: float, rules: Sequence[Restriction] | None = None) -> tuple[StageAllocation, ...]:
    """The cheapest allocations meeting the SLO at `load_rps` under `rules`, or, when none
    does, the fastest allowed ones (the step then carries an estimate above the SLO)."""
    choice = ctx.solver.solve(load_rps, rules) or ctx.solver.fastest(load_rps, rules)
    return ctx.solver.allocations(choice, load_rps)
