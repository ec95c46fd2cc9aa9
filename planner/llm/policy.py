"""What an LLM planning policy sees and decides, and the loop that steps it through the intervals.

An LLM allocation is a number of replicas per replica type (`Replicas`, one entry per type):
during a change of type both run, the new ones booting while the old ones serve. A policy
(`themis.planner.llm.policies`, one module each) is a pure `decide(ctx, state) ->
(replicas, state)`, like the batch planner's (`themis.planner.optimise.loop`): it sees each
type's capacity per replica at the SLO for the token mix it may know of, and the loads it
may know of. Online policies get the forecast and the past; offline ones (`static`,
`oracle`) the real future.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

State = TypeVar("State")
Replicas = tuple[int, ...]
"""Replicas requested of each replica type (in the order of the plan's types)."""


@dataclass(frozen=True)
class TypeOption:
    """One replica type at one interval: what a replica carries at the SLO and what it costs."""

    capacity_rps: float
    """Per replica, at the SLO, for the token mix of the interval (0: it cannot meet the SLO)."""
    cost_per_hour: float | None
    """What the planner minimises per replica-hour (`Prices.objective_per_replica_hour`);
    None: an unpriced GPU while prices are in use, never chosen."""


@dataclass(frozen=True)
class LlmStepContext:
    """What a policy sees at the start of interval `step`."""

    step: int
    load_rps: float
    """Planning load: forecast x headroom (online) or the real peak x headroom (offline)."""
    held_load_rps: float
    """The most planning load over the scale-down window: capacity is not released before."""
    observed_rps: float
    """The previous interval's real peak x headroom (interval 0: its own, the opening condition)."""
    options: tuple[TypeOption, ...]
    max_replicas: int
    cold_steps: int
    """Intervals a new replica takes to serve (the cold start, rounded up)."""
    switch_saving: float
    current: Replicas | None
    future: tuple[tuple[float, tuple[TypeOption, ...]], ...] | None = None
    """Offline policies only: (real load, options) of this interval and every later one."""


@dataclass(frozen=True)
class LlmPolicySetup:
    """Everything a policy may look at, per interval, prepared once by the planner; the loop
    hands each interval only what the policy may see."""

    planning_loads_rps: np.ndarray
    """Forecast x headroom (online) or the real peaks x headroom (offline)."""
    held_loads_rps: np.ndarray
    observed_rps: np.ndarray
    options: tuple[tuple[TypeOption, ...], ...]
    """Per interval, the options at the token mix the policy may know of."""
    max_replicas: int
    cold_steps: int
    switch_saving: float


@dataclass(frozen=True)
class LlmPolicy(Generic[State]):
    """A planning policy for an LLM service: its name, whether it sees the future, its rule."""

    name: str
    offline: bool
    initial_state: Callable[[LlmPolicySetup], State]
    decide: Callable[[LlmStepContext, State], tuple[Replicas, State]]


def replicas_needed(option: TypeOption, load_rps: float, max_replicas: int) -> int | None:
    """Replicas of a type that carry `load_rps` (at least one), or None when it cannot."""
    if option.cost_per_hour is None or option.capacity_rps <= 0:
        return None
    needed = max(1, math.ceil(load_rps / option.capacity_rps - 1e-9))
    return needed if needed <= max_replicas else None


def cheapest(options: Sequence[TypeOption], load_rps: float, max_replicas: int) -> tuple[int, int] | None:
    """(type, replicas) carrying `load_rps` at the lowest cost (ties: fewer replicas, then the
    first type), or None when no type can."""
    best: tuple[float, int, int] | None = None
    for k, option in enumerate(options):
        needed = replicas_needed(option, load_rps, max_replicas)
        if needed is not None and (best is None or (needed * option.cost_per_hour, needed) < best[:2]):
            best = (needed * option.cost_per_hour, needed, k)
    return None if best is None else (best[2], best[1])


def strongest(options: Sequence[TypeOption], max_replicas: int) -> int:
    """The type carrying the most at `max_replicas` replicas (what to run when nothing suffices)."""
    usable = [k for k, o in enumerate(options) if o.cost_per_hour is not None]
    return max(usable or range(len(options)), key=lambda k: (options[k].capacity_rps, -k))


def only(types: int, k: int, replicas: int) -> Replicas:
    """`replicas` of type k and none of the others."""
    return tuple(replicas if j == k else 0 for j in range(types))


def sized(options: Sequence[TypeOption], load_rps: float, max_replicas: int) -> Replicas:
    """The cheapest allocation of one type carrying `load_rps`, or the strongest type at
    `max_replicas` when none can (the interval then runs short)."""
    choice = cheapest(options, load_rps, max_replicas)
    if choice is None:
        return only(len(options), strongest(options, max_replicas), max_replicas)
    return only(len(options), *choice)


def carries(options: Sequence[TypeOption], replicas: Replicas) -> float:
    """Requests/s the replicas carry at the SLO (per-replica capacities added up)."""
    return float(sum(r * o.capacity_rps for r, o in zip(replicas, options)))


@dataclass
class LlmPolicyRun:
    """A policy's requests per interval."""

    replicas: list[Replicas]
    short_steps: list[int]
    """Intervals whose requested replicas carry less than their planning load."""


def run_llm_policy(policy: LlmPolicy[State], setup: LlmPolicySetup) -> LlmPolicyRun:
    """Step `policy` through every interval; an offline policy also sees what comes."""
    state = policy.initial_state(setup)
    run = LlmPolicyRun([], [])
    current: Replicas | None = None
    loads = setup.planning_loads_rps
    for i, options in enumerate(setup.options):
        ctx = LlmStepContext(
            step=i, load_rps=float(loads[i]), held_load_rps=float(setup.held_loads_rps[i]), observed_rps=float(setup.observed_rps[i]),
            options=options, max_replicas=setup.max_replicas, cold_steps=setup.cold_steps, switch_saving=setup.switch_saving,
            current=current,
            future=tuple(zip(map(float, loads[i:]), setup.options[i:])) if policy.offline else None,
        )
        replicas, state = policy.decide(ctx, state)
        if carries(options, replicas) + 1e-9 < float(loads[i]):
            run.short_steps.append(i)
        run.replicas.append(replicas)
        current = replicas
    return run
