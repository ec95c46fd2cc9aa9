"""`horizontal`: planned horizontal-only scaling: every replica has the same fixed cores.

Per interval the DP picks replicas and batch at that core count for the forecast load
(held over the scale-down window, so capacity is released only after the load stayed
low). New replicas serve a cold start after they are requested.
"""

from __future__ import annotations

import numpy as np

from themis.planner.optimise.loop import Allocations, Policy, PolicySetup, StepContext, choose
from themis.planner.optimise.solver import Restriction


def initial_state(setup: PolicySetup) -> int:
    """The state is the fixed cores per replica."""
    return int(setup.config.horizontal_cores or cheapest_cores(setup))


def decide(ctx: StepContext, cores: int) -> tuple[Allocations, int]:
    rules = (Restriction(cores=cores),) * len(ctx.solver.spaces)
    return choose(ctx, ctx.held_load_rps, rules), cores


def cheapest_cores(setup: PolicySetup) -> int:
    """The core count whose horizontal optimum costs least over the planned loads, the way
    an operator picks one replica size for a deployment (infeasible intervals count as the
    most expensive option; ties go to fewer cores)."""
    solver = setup.solver
    loads = np.asarray(setup.planning_loads_rps, dtype=float)
    levels, counts = np.unique([solver.level(x) for x in loads], return_counts=True)
    options = sorted({c for space in solver.spaces for c in space.k_cores.tolist()})
    best, best_cost = options[0], np.inf
    for cores in options:
        rules = (Restriction(cores=cores),) * len(solver.spaces)
        total = 0.0
        for level, count in zip(levels, counts):
            choice = solver.solve(solver.level_load(int(level)), rules)
            if choice is None:
                total = np.inf
                break
            total += count * sum(float(s.cost_per_hour[k, r - 1]) for s, (k, r) in zip(solver.spaces, choice))
        if total < best_cost:
            best, best_cost = cores, total
    return best


POLICY = Policy("horizontal", offline=False, initial_state=initial_state, decide=decide)
