"""`themis`: the two-stage joint horizontal/vertical policy (Razavi et al., 2024).

Every interval it computes the horizontal optimum H: the cheapest allocation (any cores,
replicas, batch) for the forecast load or the peak just observed, whichever is higher,
held over the scale-down window.

- If H fits on the replicas already serving, it moves there at once: more or fewer cores
  per replica are in-place resizes, surplus replicas are released.
- If H needs replicas that are not running but the running ones still carry the load at
  their current sizes, it just starts the missing replicas (at H's size).
- Otherwise (a surge: the load is beyond what is running), it solves a *vertical* DP
  with the serving replicas frozen: the cheapest cores (up to the node's limit) and batch
  that meet the SLO at this interval's load now (if none does, extra cores cannot absorb
  the surge and it only boots), and it starts H's extra replicas alongside (a
  second group; the larger size goes to the running replicas). Once they are ready and
  the load has settled, H fits the serving replicas and the extra cores are released.

Between intervals the surge rule (`surge_rules`) tells a runtime controller how many cores
per replica a given observed load needs at the current replica count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from themis.planner.model.queueing import latency_grid_ms
from themis.planner.model.serving import Group, StageAllocation, SurgeLevel, SurgeRule
from themis.planner.optimise.loop import Allocations, Policy, PolicyRun, PolicySetup, RuntimeRules, StepContext, choose
from themis.planner.optimise.solver import IntervalSolver, Restriction
from themis.planner.optimise.space import StageSpace


@dataclass(frozen=True)
class ThemisState:
    surges: tuple[int, ...] = ()
    """Steps at which running replicas were resized to absorb a surge."""


def initial_state(setup: PolicySetup) -> ThemisState:
    return ThemisState()


def decide(ctx: StepContext, state: ThemisState) -> tuple[Allocations, ThemisState]:
    # a jump is seen in the forecast or in the load just observed, whichever is higher
    now_rps = max(ctx.load_rps, ctx.observed_rps)
    target = choose(ctx, max(ctx.held_load_rps, now_rps))
    ready = [sum(g.replicas for g in groups) for groups in ctx.ready]
    short = [ctx.step > 0 and a.replicas > r for a, r in zip(target, ready)]
    if not any(short):
        return target, state
    solver = ctx.solver
    rules = []
    for j, (alloc, is_short) in enumerate(zip(target, short)):
        if is_short:
            rules.append(Restriction(replicas=max(ready[j], 1)))
        else:
            rules.append(Restriction(exact=(_candidate(solver.spaces[j], alloc), alloc.replicas)))
    choice = None if _carries(ctx, now_rps) else solver.solve(now_rps, rules)
    if choice is None:
        # the running replicas carry the load as they are, or no in-place resize would meet
        # the SLO (then extra cores cannot absorb the surge): only boot H's missing replicas
        out = [
            _with_new_replicas(solver, j, ctx.ready[j], ctx.current[j], alloc, now_rps) if is_short else alloc
            for j, (alloc, is_short) in enumerate(zip(target, short))
        ]
        return tuple(out), state
    vertical = solver.allocations(choice, now_rps)
    out = []
    for j, (alloc, fast, is_short) in enumerate(zip(target, vertical, short)):
        if not is_short or fast.device != alloc.device:  # devices cannot mix in a stage: boot H outright
            out.append(alloc)
            continue
        out.append(_with_new_replicas(solver, j, fast.groups, fast, alloc, now_rps))
    return tuple(out), ThemisState(state.surges + (ctx.step,))


def _carries(ctx: StepContext, load_rps: float) -> bool:
    """Do the replicas serving now, at their current sizes and batch, meet the SLO estimate?"""
    if ctx.current is None:
        return False
    total = sum(
        ctx.solver.estimate(j, groups, alloc.batch, alloc.device, load_rps)
        for j, (groups, alloc) in enumerate(zip(ctx.ready, ctx.current))
    )
    return total <= ctx.solver.slo_ms


def _with_new_replicas(
    solver: IntervalSolver, j: int, running: tuple[Group, ...], settings: StageAllocation, target: StageAllocation, load_rps: float
) -> StageAllocation:
    """The running groups (with `settings`' batch) plus the replicas `target` still lacks, at
    `target`'s size; groups of equal cores merge."""
    missing = target.replicas - sum(g.replicas for g in running)
    counts: dict[int, int] = {}
    for group in (*running, Group(missing, target.groups[0].cores)):
        counts[group.cores] = counts.get(group.cores, 0) + group.replicas
    groups = tuple(Group(n, c) for c, n in counts.items() if n > 0)
    return solver.describe(j, groups, settings.batch, settings.device, load_rps)


def _candidate(space: StageSpace, alloc: StageAllocation) -> int:
    """Index of the homogeneous candidate (option, batch) of an allocation."""
    option = space.option_of[(alloc.device, alloc.groups[0].cores)]
    return int(np.flatnonzero((space.k_option == option) & (space.k_batch == alloc.batch))[0])


def runtime_rules(run: PolicyRun[ThemisState], solver: IntervalSolver) -> RuntimeRules:
    """The surge rules of the plan and the steps that absorbed a surge."""
    surges = run.state.surges if run.state is not None else ()
    return RuntimeRules(surge_rules(run.allocations, solver.spaces, solver.slo_ms), surges)


def surge_rules(allocations: Sequence[Allocations], spaces: Sequence[StageSpace], slo_ms: float) -> tuple[tuple[SurgeRule, ...], ...]:
    """Per stage, for every (replicas, batch) the plan runs: load level -> cores per replica.

    Each level says: with r replicas at batch b, a stage load up to `max_rps` needs
    `cores` cores per replica (the smallest core count whose estimate meets the stage's
    latency budget, that is the SLO minus the other stages' estimates in the same step).
    Loads are stage loads (entrance load x visit ratio).
    """
    rules = []
    for j, space in enumerate(spaces):
        budgets: dict[tuple[int, int, str], float] = {}
        for allocs in allocations:
            a = allocs[j]
            others = sum(x.est_latency_ms for i, x in enumerate(allocs) if i != j)
            key = (a.replicas, a.batch, a.device)
            budgets[key] = min(budgets.get(key, np.inf), slo_ms - others)
        rules.append(
            tuple(
                SurgeRule(replicas, batch, _levels(space, replicas, batch, device, budget))
                for (replicas, batch, device), budget in sorted(budgets.items())
            )
        )
    return tuple(rules)


def _levels(space: StageSpace, replicas: int, batch: int, device: str, budget_ms: float) -> tuple[SurgeLevel, ...]:
    """Smallest cores for increasing loads: keep a core count only if it carries more load
    than every smaller one (tables are not monotone in cores)."""
    levels: list[SurgeLevel] = []
    best = 0.0
    for option in sorted((o for o in space.options if o.device == device), key=lambda o: o.cores):
        max_rps = _max_load_rps(option.service_ms, replicas, batch, budget_ms, space.quantile)
        if max_rps > best:
            levels.append(SurgeLevel(round(max_rps, 6), option.cores))
            best = max_rps
    return tuple(levels)


def _max_load_rps(service_ms: np.ndarray, replicas: int, batch: int, budget_ms: float, quantile: float) -> float:
    """The largest load (to 1e-4 of capacity, rounded down) whose estimate meets the budget:
    a coarse then a fine grid (latency rises with load; at capacity it is infinite)."""
    s = service_ms[1 : batch + 1]
    stats = (np.array([s[-1]]), np.array([s.max()]), np.array([np.max(s / np.arange(1, batch + 1))]), np.array([float(batch)]))
    capacity = replicas * batch * 1000.0 / s[-1]
    low, width = 0.0, 1.0
    for _ in range(2):
        fractions = low + width * np.arange(1, 101) / 100.0
        latency = latency_grid_ms(capacity * fractions, *stats, replicas, quantile)[:, 0, replicas - 1]
        failing = np.flatnonzero(~(latency <= budget_ms))
        first = failing[0] if failing.size else 100
        low = low + width * first / 100.0
        width /= 100.0
    return float(capacity * low)


POLICY = Policy("themis", offline=False, initial_state=initial_state, decide=decide, runtime_rules=runtime_rules)
