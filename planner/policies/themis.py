"""`themis`: the two-stage joint horizontal/vertical policy (Razavi et al., 2024).

Every interval it computes the horizontal optimum H: the cheapest allocation (any cores,
replicas, batch) for the forecast load, held over the scale-down window.

- If H fits on the replicas already serving, it moves there at once: more or fewer cores
  per replica are in-place resizes, surplus replicas are released.
- Otherwise (a surge: H needs replicas that are not running), it solves a *vertical* DP
  with the serving replicas frozen: the cheapest cores (up to the node's limit) and batch
  that carry this interval's load now, and it starts H's extra replicas alongside (a
  second group, listed after the running one). Once they are ready and the load has
  settled, H fits the serving replicas and the extra cores are released.

Between intervals the surge rule (`surge_rules`) tells a runtime controller how many cores
per replica a given observed load needs at the current replica count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from themis.planner.policies.base import PolicySetup, Restriction, StepContext, choose
from themis.planner.queueing import latency_grid_ms
from themis.planner.serving import Group, StageAllocation

OFFLINE = False


def initial_state(setup: PolicySetup) -> dict[str, Any]:
    return {"surges": []}


def decide(ctx: StepContext, state: dict[str, Any]) -> tuple[tuple[StageAllocation, ...], dict[str, Any]]:
    target = choose(ctx, ctx.held_load_rps)
    ready = [sum(g.replicas for g in groups) for groups in ctx.ready]
    short = [ctx.step > 0 and a.replicas > r for a, r in zip(target, ready)]
    if not any(short):
        return target, state
    solver = ctx.solver
    rules = []
    for j, (alloc, is_short) in enumerate(zip(target, short)):
        space = solver.spaces[j]
        if is_short:
            rules.append(Restriction(replicas=max(ready[j], 1)))
        else:
            k = _candidate(space, alloc)
            rules.append(Restriction(exact=(k, alloc.replicas)))
    vertical = choose(ctx, ctx.load_rps, rules)
    out = []
    for j, (alloc, fast, is_short) in enumerate(zip(target, vertical, short)):
        if not is_short:
            out.append(alloc)
            continue
        space = solver.spaces[j]
        if fast.device != alloc.device:  # cannot mix devices in one stage: boot H outright
            out.append(alloc)
            continue
        groups = fast.groups + (Group(alloc.replicas - ready[j], alloc.groups[0].cores),)
        out.append(space.describe(groups, fast.batch, fast.device, ctx.load_rps * space.stage.visit_ratio))
    state = {"surges": state["surges"] + [ctx.step]}
    return tuple(out), state


def _candidate(space: Any, alloc: StageAllocation) -> int:
    """Index of the homogeneous candidate (option, batch) of an allocation."""
    option = space.option_of[(alloc.device, alloc.groups[0].cores)]
    return int(np.flatnonzero((space.k_option == option) & (space.k_batch == alloc.batch))[0])


def surge_rules(allocations: Sequence[tuple[StageAllocation, ...]], spaces: Sequence[Any], slo_ms: float) -> list[list[dict[str, Any]]]:
    """Per stage, for every (replicas, batch) the plan runs: load level -> cores per replica.

    Each level says: with r replicas at batch b, a stage load up to `max_rps` needs
    `cores` cores per replica (the smallest core count whose estimate meets the stage's
    latency budget, that is the SLO minus the other stages' estimates in the same step).
    Loads are stage loads (entrance load x visit ratio).
    """
    rules: list[list[dict[str, Any]]] = []
    for j, space in enumerate(spaces):
        budgets: dict[tuple[int, int, str], float] = {}
        for allocs in allocations:
            a = allocs[j]
            others = sum(x.est_latency_ms for i, x in enumerate(allocs) if i != j)
            key = (a.replicas, a.batch, a.device)
            budgets[key] = min(budgets.get(key, np.inf), slo_ms - others)
        entries = []
        for (replicas, batch, device), budget in sorted(budgets.items()):
            levels = _levels(space, replicas, batch, device, budget)
            entries.append({"replicas": replicas, "batch": batch, "levels": levels})
        rules.append(entries)
    return rules


def _levels(space: Any, replicas: int, batch: int, device: str, budget_ms: float) -> list[dict[str, Any]]:
    """Smallest cores for increasing loads: keep a core count only if it carries more load
    than every smaller one (tables are not monotone in cores)."""
    fractions = np.linspace(0.0, 1.0, 1001)[1:]
    levels: list[dict[str, Any]] = []
    best = 0.0
    for option in sorted((o for o in space.options if o.device == device), key=lambda o: o.cores):
        s = option.service_ms
        full = s[batch]
        capacity = replicas * batch * 1000.0 / full
        grid = latency_grid_ms(
            capacity * fractions,
            np.array([full]),
            np.array([np.max(s[1 : batch + 1])]),
            np.array([np.max(s[1 : batch + 1] / np.arange(1, batch + 1))]),
            np.array([float(batch)]),
            replicas,
            space.quantile,
        )[:, 0, replicas - 1]
        # the load just below the first failing fraction is safe (latency rises with load;
        # at full capacity the estimate is infinite, so some fraction always fails)
        failing = np.flatnonzero(~(grid <= budget_ms))
        if failing[0] == 0:
            continue
        top = fractions[failing[0] - 1]
        max_rps = float(capacity * top)
        if max_rps > best:
            levels.append({"max_rps": round(max_rps, 6), "cores": option.cores})
            best = max_rps
    return levels
