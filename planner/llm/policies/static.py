"""`static`: one allocation for the whole trace, the cheapest that carries every interval's real
peak at that interval's real token mix. Offline: it knows the trace in advance."""

from __future__ import annotations

from themis.planner.llm.policy import LlmPolicy, LlmPolicySetup, LlmStepContext, Replicas, only, replicas_needed, strongest


def initial_state(setup: LlmPolicySetup) -> Replicas | None:
    """The state is the one allocation, chosen at the first interval."""
    return None


def decide(ctx: LlmStepContext, chosen: Replicas | None) -> tuple[Replicas, Replicas | None]:
    if chosen is None:
        types = len(ctx.options)
        best: tuple[float, int, int] | None = None
        for k in range(types):
            needs = [replicas_needed(options[k], load, ctx.max_replicas) for load, options in ctx.future]
            if any(n is None for n in needs):
                continue
            most = max(needs)
            cost = most * ctx.options[k].cost_per_hour
            if best is None or (cost, most) < best[:2]:
                best = (cost, most, k)
        chosen = only(types, strongest(ctx.options, ctx.max_replicas), ctx.max_replicas) if best is None else only(types, best[2], best[1])
    return chosen, chosen


POLICY = LlmPolicy("static", offline=True, initial_state=initial_state, decide=decide)
