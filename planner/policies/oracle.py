"""`oracle`: the offline optimum with the real future, the cost floor.

At every interval it runs the cheapest allocation that meets the SLO at that interval's
*actual* peak. Replicas needed at interval t are requested a cold start ahead (at
t - cold_steps) and held, so they are ready in time; while they wait they are kept at the
smallest core count and resized in place when they start serving.
"""

from __future__ import annotations

from themis.planner.model.serving import Group
from themis.planner.optimise.loop import Allocations, Policy, PolicySetup, StepContext, choose


def initial_state(setup: PolicySetup) -> None:
    """The oracle keeps no state: it sees the future instead."""
    return None


def decide(ctx: StepContext, state: None) -> tuple[Allocations, None]:
    window = ctx.future_peaks_rps[: ctx.cold_steps + 1]
    now = choose(ctx, float(window[0]))
    ahead = [choose(ctx, float(load)) for load in window[1:]]
    out = []
    for j, alloc in enumerate(now):
        wanted = max([alloc.replicas] + [a[j].replicas for a in ahead])
        extra = wanted - alloc.replicas
        if extra == 0:
            out.append(alloc)
            continue
        space = ctx.solver.spaces[j]
        smallest = min(o.cores for o in space.options if o.device == alloc.device)
        (group,) = alloc.groups
        groups = (Group(wanted, smallest),) if group.cores == smallest else (group, Group(extra, smallest))
        out.append(ctx.solver.describe(j, groups, alloc.batch, alloc.device, float(window[0])))
    return tuple(out), state


POLICY = Policy("oracle", offline=True, initial_state=initial_state, decide=decide)
