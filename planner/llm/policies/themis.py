"""`themis` for an LLM service: the replica type and the replicas chosen afresh every interval.

Per interval it sizes the cheapest type for max(forecast held over the scale-down window,
the last observed peak): predictive, and reactive to a surge the forecast missed. Moving to
another type means new replicas and a cold start (an LLM replica is not resized in place),
so it moves only when the new type saves at least `switch_saving` of the cost, or the
current type cannot carry the load; the old type's replicas keep serving, at the most they
had, until the new ones are ready (`cold_steps` intervals), then go.
"""

from __future__ import annotations

from dataclasses import dataclass

from themis.planner.llm.policy import LlmPolicy, LlmPolicySetup, LlmStepContext, Replicas, only, replicas_needed, sized


@dataclass(frozen=True)
class TypeChoice:
    """The type in use, and the replicas of the previous type kept until `until_step`."""

    type: int | None = None
    kept: Replicas = ()
    until_step: int = -1


def initial_state(setup: LlmPolicySetup) -> TypeChoice:
    return TypeChoice()


def decide(ctx: LlmStepContext, state: TypeChoice) -> tuple[Replicas, TypeChoice]:
    types = len(ctx.options)
    load = max(ctx.held_load_rps, ctx.observed_rps)
    target = sized(ctx.options, load, ctx.max_replicas)
    new_type = max(range(types), key=lambda k: target[k])
    if state.type is not None and new_type != state.type:
        stay = replicas_needed(ctx.options[state.type], load, ctx.max_replicas)
        move_cost = target[new_type] * (ctx.options[new_type].cost_per_hour or 0.0)
        if stay is not None and stay * ctx.options[state.type].cost_per_hour * (1.0 - ctx.switch_saving) <= move_cost:
            new_type, target = state.type, only(types, state.type, stay)  # too small a saving for a cold start
    if state.type is None:
        state = TypeChoice(new_type)
    elif new_type != state.type:
        state = TypeChoice(new_type, ctx.current, ctx.step + ctx.cold_steps)  # the old replicas serve while the new boot
    if ctx.step < state.until_step:
        target = tuple(max(new, old) for new, old in zip(target, state.kept))
    return target, state


POLICY = LlmPolicy("themis", offline=False, initial_state=initial_state, decide=decide)
