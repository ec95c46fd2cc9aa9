"""The DP over stages against two independent references: brute-force enumeration and
`scipy.optimize.milp` (multiple-choice knapsack), on 300 seeded random small instances."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import Bounds, LinearConstraint, milp

from themis.planner.optimise import dp


def random_instance(rng: np.random.Generator):
    stages = int(rng.integers(1, 4))
    budget = int(rng.integers(1, 25))
    units, costs = [], []
    for _ in range(stages):
        n = int(rng.integers(1, 7))
        units.append(rng.integers(0, budget + 3, size=n))
        cost = rng.integers(1, 50, size=n).astype(float)
        cost[rng.random(n) < 0.1] = np.inf  # some candidates are not allowed
        costs.append(cost)
    return units, costs, budget


def brute_force(units, costs, budget) -> float:
    best = np.inf
    for choice in itertools.product(*(range(len(u)) for u in units)):
        total_units = sum(int(u[i]) for u, i in zip(units, choice))
        if total_units <= budget:
            best = min(best, sum(float(c[i]) for c, i in zip(costs, choice)))
    return best


def milp_optimum(units, costs, budget) -> float:
    """min sum cost*x s.t. one candidate per stage, sum units*x <= budget, x binary."""
    keep = [np.isfinite(c) for c in costs]
    if not all(k.any() for k in keep):
        return np.inf
    u = np.concatenate([uu[k] for uu, k in zip(units, keep)]).astype(float)
    c = np.concatenate([cc[k] for cc, k in zip(costs, keep)])
    sizes = [int(k.sum()) for k in keep]
    one_each = np.zeros((len(sizes), len(c)))
    start = 0
    for j, size in enumerate(sizes):
        one_each[j, start : start + size] = 1.0
        start += size
    constraints = [LinearConstraint(one_each, 1, 1), LinearConstraint(u[None, :], -np.inf, budget)]
    res = milp(c, constraints=constraints, integrality=np.ones_like(c), bounds=Bounds(0, 1))
    return float(res.fun) if res.status == 0 else np.inf


@pytest.mark.parametrize("seed", range(300))
def test_dp_equals_brute_force_and_milp(seed: int) -> None:
    units, costs, budget = random_instance(np.random.default_rng(seed))
    solution = dp.solve_stages(units, costs, budget)
    expected = brute_force(units, costs, budget)
    assert solution.cost == expected
    assert milp_optimum(units, costs, budget) == pytest.approx(expected) if np.isfinite(expected) else np.isinf(milp_optimum(units, costs, budget))
    if solution.feasible:  # the returned choice is feasible and costs what it says
        assert sum(int(u[i]) for u, i in zip(units, solution.choice)) <= budget
        assert sum(float(c[i]) for c, i in zip(costs, solution.choice)) == solution.cost


@given(
    latency=st.lists(st.floats(0.0, 500.0), min_size=1, max_size=30),
    seed=st.integers(0, 10_000),
    slo=st.floats(1.0, 400.0),
)
@settings(max_examples=100, deadline=None)
def test_one_stage_picks_the_cheapest_within_the_slo(latency: list[float], seed: int, slo: float) -> None:
    lat = np.array(latency)
    cost = np.random.default_rng(seed).integers(1, 20, size=lat.size).astype(float)
    solution = dp.solve_one_stage(lat, cost, slo)
    within = cost[lat <= slo]
    if within.size == 0:
        assert not solution.feasible
    else:
        assert solution.cost == within.min()
        assert lat[solution.choice[0]] <= slo


@given(latency=st.lists(st.floats(0.0, 1e4, allow_nan=False), min_size=1, max_size=20), units=st.integers(1, 400))
def test_latency_units_round_up_so_solutions_truly_fit(latency: list[float], units: int) -> None:
    slo = 200.0
    u = dp.latency_units(np.array(latency), slo, units)
    fits = u <= units
    assert np.all(np.array(latency)[fits] <= slo * (1 + 1e-9))
    assert np.all((u * slo / units)[fits] >= np.array(latency)[fits] - 1e-6 * slo)
    assert np.all(fits == (np.array(latency) <= slo * (1 + 1e-9)))
