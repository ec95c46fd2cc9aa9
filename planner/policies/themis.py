"""`themis`: the two-stage joint horizontal/vertical policy (Razavi et al., 2024).

Every interval it computes a *lean* horizontal layout H for the load now (the forecast or
the peak just observed, whichever is higher). Lean horizontal, fast vertical: where
`horizontal` holds capacity for the highest load of the scale-down window (300 s), themis
relies on growing its replicas in place (a resize lands in `resize_s`, a new replica
needs a cold start), so H is the cheapest layout that

1. meets the SLO estimate at the highest load of the last cold start (the time a released
   replica takes to come back), not of the whole scale-down window;
2. carries, at its planned sizes, the scale-down window's load divided by the reaction
   gain g = 1 + (SLO - S_max) / (check_s + resize_s): a burst to that load builds a queue
   only until the runtime controller has grown the replicas (a check plus a resize
   delay), and a queue of that length still drains within the SLO slack left beside the
   slowest batch S_max;
3. keeps enough replicas that, grown to the node's cores, they carry the scale-down
   window's load by the estimate (the vertical reserve covers a return of the load).

Both g and the reserve come from the profile (service times at each size) and the resize
delay; with a resize delay as long as the SLO slack the reserve buys little and H is
close to `horizontal`'s layout.

The plan requests H at every step: the replicas serving are resized in place to H's
size, surplus ones are released, missing ones boot. The plan never holds grown replicas
for a whole interval: a load beyond what is serving is absorbed in place by the runtime
controller, within a resize delay and only while it lasts, and H's new replicas repack
it once they are ready (a cold start later). A step where the load just seen is beyond
the replicas serving, at H's sizes, is recorded as a surge step (`surge_steps`).

Between planned steps the runtime controller (`themis.planner.simulation.controllers.surge`)
sizes each stage from the plan's surge rules (`surge_rules`): per stage, the service
times by batch and cores and the stage's latency budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from themis.planner.model.config import DEFAULT_SURGE_CHECK_S
from themis.planner.model.serving import Group, SurgeRule
from themis.planner.optimise.loop import Allocations, Policy, PolicyRun, PolicySetup, RuntimeRules, StepContext, choose
from themis.planner.optimise.solver import FREE, IntervalSolver, Restriction


@dataclass(frozen=True)
class ThemisState:
    hold_steps: int = 1
    """Intervals a load is held for: a cold start, rounded up to whole intervals."""
    recent_rps: tuple[float, ...] = ()
    """The load of the last `hold_steps` intervals, newest last."""
    surges: tuple[int, ...] = ()
    """Steps at which the load just seen is beyond the replicas serving (at H's sizes):
    H's missing replicas boot while the runtime controller absorbs the load in place."""


def initial_state(setup: PolicySetup) -> ThemisState:
    config = setup.config
    return ThemisState(hold_steps=max(1, math.ceil(config.cold_start_s / config.interval_s - 1e-9)))


def decide(ctx: StepContext, state: ThemisState) -> tuple[Allocations, ThemisState]:
    # a jump is seen in the forecast or in the load just observed, whichever is higher
    now_rps = max(ctx.load_rps, ctx.observed_rps)
    recent = (*state.recent_rps, now_rps)[-state.hold_steps :]
    target = lean_layout(ctx, max(recent), max(ctx.held_load_rps, now_rps))
    ready = [sum(g.replicas for g in groups) for groups in ctx.ready]
    short = ctx.step > 0 and any(a.replicas > r for a, r in zip(target, ready))
    surge = short and not _carries_repacked(ctx, target, ctx.observed_rps)
    return target, ThemisState(state.hold_steps, recent, state.surges + ((ctx.step,) if surge else ()))


def lean_layout(ctx: StepContext, load_rps: float, held_rps: float) -> Allocations:
    """H: the cheapest allocations meeting the SLO estimate at `load_rps` that also carry
    `held_rps` / g at their planned sizes and `held_rps` grown to the node's cores (module
    docstring, rules 1-3)."""
    solver = ctx.solver
    first = choose(ctx, load_rps)
    slack_ms = ctx.config.slo_ms - sum(
        space.slowest_batch_ms(a.device, max(g.cores for g in a.groups), a.batch) for space, a in zip(solver.spaces, first)
    )
    gain = 1.0 + max(0.0, slack_ms) / 1000.0 / (DEFAULT_SURGE_CHECK_S + ctx.config.resize_s)
    plan_rps = max(load_rps, held_rps / gain)
    target = first if plan_rps <= load_rps else choose(ctx, plan_rps)
    largest = [Restriction(cores=max(o.cores for o in space.options)) for space in solver.spaces]
    reserve = solver.solve(held_rps, largest)
    if reserve is None:
        return choose(ctx, max(plan_rps, held_rps))  # no reserve carries it: hold like `horizontal`
    fewest = [r for _, r in reserve]
    if all(a.replicas >= n for a, n in zip(target, fewest)):
        return target
    rules = [FREE if a.replicas >= n else Restriction(replicas=n) for a, n in zip(target, fewest)]
    return choose(ctx, plan_rps, rules)


def _carries_repacked(ctx: StepContext, target: Allocations, load_rps: float) -> bool:
    """Do the replicas serving now, at H's sizes and batch (repacked in place), meet the
    SLO estimate? Then H's missing replicas only boot: the layout is never held at the
    sizes of an earlier surge."""
    total = 0.0
    for j, (groups, alloc) in enumerate(zip(ctx.ready, target)):
        ready = sum(g.replicas for g in groups)
        if ready == 0:
            return False
        total += ctx.solver.estimate(j, (Group(min(ready, alloc.replicas), alloc.groups[0].cores),), alloc.batch, alloc.device, load_rps)
    return total <= ctx.solver.slo_ms


def runtime_rules(run: PolicyRun[ThemisState], solver: IntervalSolver) -> RuntimeRules:
    """The surge rules of the plan and its surge steps."""
    surges = run.state.surges if run.state is not None else ()
    return RuntimeRules(surge_rules(run.allocations, solver), surges)


def surge_rules(allocations: Sequence[Allocations], solver: IntervalSolver) -> tuple[SurgeRule, ...]:
    """Per stage, what the runtime controller sizes it from: the service times of every
    replica size of the stage's device, by batch, and the stage's latency budget (the SLO
    minus the other stages' estimates, the tightest over the steps; at least an equal
    share of the SLO)."""
    slo_ms = solver.slo_ms
    rules = []
    for j, space in enumerate(solver.spaces):
        device = allocations[0][j].device if allocations else space.options[0].device
        budget = slo_ms
        for allocs in allocations:
            others = sum(x.est_latency_ms for i, x in enumerate(allocs) if i != j)
            if math.isfinite(others):
                budget = min(budget, slo_ms - others)
        budget = max(budget, slo_ms / len(solver.spaces))
        options = sorted((o for o in space.options if o.device == device), key=lambda o: o.cores)
        largest = max(space.batches)
        rules.append(
            SurgeRule(
                budget_ms=float(budget),
                cores=tuple(o.cores for o in options),
                batches=tuple(space.batches),
                service_ms=tuple(tuple(float(x) for x in o.service_ms[1 : largest + 1]) for o in options),
                max_replicas=space.max_replicas,
                device=device,
            )
        )
    return tuple(rules)


POLICY = Policy("themis", offline=False, initial_state=initial_state, decide=decide, runtime_rules=runtime_rules)
