"""`vertical`: planned vertical-only scaling: a fixed number of replicas, resized in place
(up to the node's cores) every interval. Resizes take effect within a second, so this
policy reacts fast but cannot grow beyond replicas x node cores.
"""

from __future__ import annotations

import numpy as np

from themis.planner.optimise.loop import Allocations, Policy, PolicySetup, StepContext, choose
from themis.planner.optimise.solver import Restriction


def initial_state(setup: PolicySetup) -> int:
    """The state is the fixed replica count."""
    return int(setup.config.vertical_replicas or fewest_replicas(setup))


def decide(ctx: StepContext, replicas: int) -> tuple[Allocations, int]:
    rules = (Restriction(replicas=replicas),) * len(ctx.solver.spaces)
    return choose(ctx, ctx.held_load_rps, rules), replicas


def fewest_replicas(setup: PolicySetup) -> int:
    """The fewest replicas that, resized up to the node's cores, carry the largest planned
    load (the whole range of loads the deployment is configured for)."""
    solver = setup.solver
    peak = float(np.nanmax(setup.planning_loads_rps))
    max_replicas = min(space.max_replicas for space in solver.spaces)
    for replicas in range(1, max_replicas + 1):
        if solver.solve(peak, (Restriction(replicas=replicas),) * len(solver.spaces)) is not None:
            return replicas
    return max_replicas


POLICY = Policy("vertical", offline=False, initial_state=initial_state, decide=decide)
