"""`horizontal`: one replica type for the whole trace, replicas per interval for the forecast.

The type is the one whose horizontal plan costs least over the forecast loads (an operator
choosing one replica size for a deployment; an interval no type can carry counts as the
most expensive). Per interval it asks for the replicas that carry the load held over the
scale-down window; new replicas serve a cold start later.
"""

from __future__ import annotations

import math

from themis.planner.llm.policy import LlmPolicy, LlmPolicySetup, LlmStepContext, Replicas, only, replicas_needed


def initial_state(setup: LlmPolicySetup) -> int:
    """The state is the fixed replica type."""
    costs = []
    for k in range(len(setup.options[0])):
        total = 0.0
        for load, options in zip(setup.planning_loads_rps, setup.options):
            needed = replicas_needed(options[k], float(load), setup.max_replicas)
            total = math.inf if needed is None else total + needed * options[k].cost_per_hour
        costs.append(total)
    return min(range(len(costs)), key=lambda k: (costs[k], k))


def decide(ctx: LlmStepContext, k: int) -> tuple[Replicas, int]:
    needed = replicas_needed(ctx.options[k], ctx.held_load_rps, ctx.max_replicas)
    return only(len(ctx.options), k, ctx.max_replicas if needed is None else needed), k


POLICY = LlmPolicy("horizontal", offline=False, initial_state=initial_state, decide=decide)
