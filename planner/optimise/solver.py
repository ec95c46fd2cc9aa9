"""The per-interval solver: the cheapest allocation of every stage meeting the SLO at a load.

It runs the pure DP (`dp`) over the stages' candidate spaces, restricted where a policy
fixes cores or replicas, and caches solutions per load level (loads rounded *up* to a
geometric grid), so long horizons cost one solve per distinct level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from themis.planner.model.config import PlanConfig
from themis.planner.model.serving import Group, StageAllocation
from themis.planner.optimise import dp
from themis.planner.optimise.space import StageSpace


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
        self._estimates: dict[tuple[int, tuple[Group, ...], int, str, int], float] = {}

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
            # ties go to the most capacity, among candidates whose full batch fits in the SLO
            space = self.spaces[0]
            spare = np.where((space.k_full_ms <= self.slo_ms)[:, None], space.capacity_rps, 0.0)
            solution = dp.solve_one_stage(lat[0], costs[0], self.slo_ms, spare.ravel())
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
