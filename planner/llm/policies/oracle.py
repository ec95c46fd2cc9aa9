"""`oracle`: the offline optimum with the real future, the cost floor.

At every interval the cheapest type and replicas that carry that interval's real peak at its
real token mix. Replicas needed at interval t are asked for a cold start ahead (at
t - cold_steps) and kept until then, so they are ready in time: each interval asks, per
type, for the most that any interval of the next cold start needs.
"""

from __future__ import annotations

from themis.planner.llm.policy import LlmPolicy, LlmPolicySetup, LlmStepContext, Replicas, sized


def initial_state(setup: LlmPolicySetup) -> None:
    """The oracle keeps no state: it sees the future instead."""
    return None


def decide(ctx: LlmStepContext, state: None) -> tuple[Replicas, None]:
    window = ctx.future[: ctx.cold_steps + 1]
    wanted = [sized(options, load, ctx.max_replicas) for load, options in window]
    return tuple(max(column) for column in zip(*wanted)), state


POLICY = LlmPolicy("oracle", offline=True, initial_state=initial_state, decide=decide)
