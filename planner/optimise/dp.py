"""The pure optimiser: pick one candidate per pipeline stage, minimum total cost, subject to
the sum of the stages' latencies fitting the SLO.

Latencies are discretised into integer units of SLO / `budget_units`, rounded *up*, so
every solution the DP returns truly meets the SLO; the DP is exact for the discretised
problem (a multiple-choice knapsack): f_1(k) = best_1(k), f_j(k) = min_u best_j(u) +
f_{j-1}(k - u), where best_j(k) is the cheapest candidate of stage j using at most k
units. A one-stage service needs no discretisation: the cheapest candidate within the
SLO.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Solution:
    """Chosen candidate index per stage and the total cost; `cost` is inf when infeasible."""

    choice: tuple[int, ...]
    cost: float

    @property
    def feasible(self) -> bool:
        return bool(np.isfinite(self.cost))


INFEASIBLE = Solution((), float("inf"))


def latency_units(latency_ms: np.ndarray, slo_ms: float, budget_units: int) -> np.ndarray:
    """Latency in budget units, rounded up (inf/NaN latencies become budget + 1)."""
    units = np.ceil(np.asarray(latency_ms, dtype=float) / (slo_ms / budget_units) - 1e-9)
    return np.where(np.isfinite(units), np.clip(units, 0, budget_units + 1), budget_units + 1).astype(np.int64)


def cheapest_within(units: np.ndarray, cost: np.ndarray, budget_units: int) -> tuple[np.ndarray, np.ndarray]:
    """best[k], arg[k]: the cheapest candidate using at most k units, k = 0..budget_units."""
    ok = (units <= budget_units) & np.isfinite(cost)
    idx = np.flatnonzero(ok)
    best = np.full(budget_units + 1, np.inf)
    arg = np.full(budget_units + 1, -1, dtype=np.int64)
    if idx.size:
        # cheapest per exact unit count: sort by (units, cost) and keep the first of each unit
        order = idx[np.lexsort((cost[idx], units[idx]))]
        u_sorted = units[order]
        first = np.r_[True, u_sorted[1:] != u_sorted[:-1]]
        best[u_sorted[first]] = cost[order[first]]
        arg[u_sorted[first]] = order[first]
        # prefix minimum, keeping the argument of the earliest unit count reaching it
        cum = np.minimum.accumulate(best)
        pos = np.maximum.accumulate(np.where((best == cum) & np.isfinite(best) & (best < np.r_[np.inf, cum[:-1]]), np.arange(budget_units + 1), 0))
        best, arg = cum, np.where(np.isfinite(cum), arg[pos], -1)
    return best, arg


def solve_stages(units: Sequence[np.ndarray], costs: Sequence[np.ndarray], budget_units: int) -> Solution:
    """Exact DP over stages for the discretised problem (see module docstring)."""
    if not units:
        return Solution((), 0.0)
    tables = [cheapest_within(u, c, budget_units) for u, c in zip(units, costs)]
    f, _ = tables[0]
    splits: list[np.ndarray] = []
    k = np.arange(budget_units + 1)
    for best, _ in tables[1:]:
        # total[k, u] = best_j(u) + f_{j-1}(k - u) for u <= k
        u = np.arange(budget_units + 1)
        prev = np.where(u[None, :] <= k[:, None], f[np.clip(k[:, None] - u[None, :], 0, None)], np.inf)
        total = prev + best[None, :]
        split = np.argmin(total, axis=1)
        f = total[k, split]
        splits.append(split)
    if not np.isfinite(f[budget_units]):
        return INFEASIBLE
    choice = []
    remaining = budget_units
    for j in range(len(tables) - 1, 0, -1):
        u = int(splits[j - 1][remaining])
        choice.append(int(tables[j][1][u]))
        remaining -= u
    choice.append(int(tables[0][1][remaining]))
    return Solution(tuple(reversed(choice)), float(f[budget_units]))


def solve_one_stage(latency_ms: np.ndarray, cost: np.ndarray, slo_ms: float, capacity: np.ndarray | None = None) -> Solution:
    """Cheapest candidate with latency <= SLO. Ties: the most `capacity` (the candidate
    that absorbs a burst best: more batching at the same cost), then the lower latency,
    then the lower index."""
    ok = np.flatnonzero((np.asarray(latency_ms) <= slo_ms) & np.isfinite(cost))
    if not ok.size:
        return INFEASIBLE
    spare = -np.asarray(capacity, dtype=float)[ok] if capacity is not None else np.zeros(ok.size)
    best = ok[np.lexsort((latency_ms[ok], spare, cost[ok]))[0]]
    return Solution((int(best),), float(cost[best]))
