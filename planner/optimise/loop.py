"""The policy loop: step a planning policy through the intervals (Ray Serve's policy shape).

A planning policy (`Policy`, one module each in `themis.planner.policies`) is a pure
`decide(ctx, state) -> (allocations, state)`: it gets the interval's context and its own
previous state, and returns what each stage requests at the start of the interval. The
loop owns everything a policy must not compute for itself: the replicas actually serving
once the delays apply (`replicas`), the scale-down hold, and what the policy may see.
Online policies get no future in their context; offline ones (`Policy.offline`) get the
real peaks from their interval on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

from themis.planner.model.config import PlanConfig
from themis.planner.model.serving import Group, StageAllocation, SurgeRule
from themis.planner.optimise.replicas import ReplicaTracker
from themis.planner.optimise.solver import IntervalSolver, Restriction

State = TypeVar("State")
Allocations = tuple[StageAllocation, ...]


@dataclass(frozen=True)
class PolicySetup:
    """What a policy may look at once, before the first interval."""

    solver: IntervalSolver
    config: PlanConfig
    planning_loads_rps: np.ndarray
    """Per interval: forecast (or the opening observed peak) x headroom for online policies,
    the real peaks for offline ones; online policies use an element only from its own
    interval on."""
    actual_peaks_rps: np.ndarray | None
    """The trace's real peaks: offline policies (static, oracle) only."""
    observed_peaks_rps: np.ndarray
    """The same peaks, handed to each interval's context only from the past (`observed_rps`)."""
    arrivals_s: np.ndarray | None = None
    """The trace's request arrivals (those `compare` replays with its default seed):
    offline policies only."""


@dataclass(frozen=True)
class StepContext:
    """What a policy sees at the start of interval `step`."""

    step: int
    load_rps: float
    """Planning load of this interval (forecast x headroom)."""
    held_load_rps: float
    """Max planning load over the scale-down window: capacity is not released before."""
    observed_rps: float
    """The real peak of the previous interval (x headroom): past data, so online policies may
    react to it (interval 0: its own opening peak, the initial condition)."""
    ready: tuple[tuple[Group, ...], ...]
    """Per stage, replicas serving at the start of the interval."""
    current: Allocations | None
    solver: IntervalSolver
    config: PlanConfig
    cold_steps: int
    future_peaks_rps: np.ndarray | None = None
    """Actual peaks from this interval on: offline policies only."""


@dataclass
class PolicyRun(Generic[State]):
    """A policy's moves over the intervals and the replicas that served them."""

    allocations: list[Allocations] = field(default_factory=list)
    infeasible_steps: list[int] = field(default_factory=list)
    serving: list[tuple[tuple[Group, ...], ...]] = field(default_factory=list)
    """Per interval and stage, the groups actually serving (delays applied)."""
    state: State | None = None


@dataclass(frozen=True)
class RuntimeRules:
    """What a plan hands to the controller that runs it between planned steps."""

    surge_rules: tuple[SurgeRule, ...] = ()
    """One per stage: what the runtime surge controller sizes the stage from."""
    surge_steps: tuple[int, ...] = ()


@dataclass(frozen=True)
class Policy(Generic[State]):
    """A planning policy: its name, whether it sees the future, and its pure decision rule."""

    name: str
    offline: bool
    initial_state: Callable[[PolicySetup], State]
    decide: Callable[[StepContext, State], tuple[Allocations, State]]
    runtime_rules: Callable[[PolicyRun[State], IntervalSolver], RuntimeRules] | None = None
    """Rules for the runtime controller (the themis surge rule); None: the plan is replayed."""


def run_policy(policy: Policy[State], setup: PolicySetup) -> PolicyRun[State]:
    """Step `policy` through every interval, tracking the replicas and the hysteresis window."""
    config = setup.config
    loads = setup.planning_loads_rps
    cold_steps = int(math.ceil(config.cold_start_s / config.interval_s - 1e-9))
    hold = max(1, int(math.ceil(config.scale_down_delay_s / config.interval_s - 1e-9)))
    held = _running_max(loads, hold)
    peaks = setup.observed_peaks_rps
    observed = np.r_[peaks[:1], peaks[:-1]] * config.headroom
    replicas = ReplicaTracker(len(setup.solver.spaces), cold_steps)
    run: PolicyRun[State] = PolicyRun()
    state = policy.initial_state(setup)
    current = None
    ready = replicas.serving(0)
    for i in range(len(loads)):
        ctx = StepContext(
            step=i,
            load_rps=float(loads[i]),
            held_load_rps=float(held[i]),
            observed_rps=float(observed[i]),
            ready=ready,
            current=current,
            solver=setup.solver,
            config=config,
            cold_steps=cold_steps,
            future_peaks_rps=setup.actual_peaks_rps[i:] if policy.offline and setup.actual_peaks_rps is not None else None,
        )
        allocs, state = policy.decide(ctx, state)
        replicas.request(i, allocs)
        run.serving.append(replicas.serving(i))
        if i + 1 < len(loads):
            ready = replicas.serving(i + 1)
        if sum(a.est_latency_ms for a in allocs) > config.slo_ms + 1e-9:
            run.infeasible_steps.append(i)
        run.allocations.append(allocs)
        current = allocs
    run.state = state
    return run


def _running_max(values: np.ndarray, window: int) -> np.ndarray:
    """out[i] = max(values[i - window + 1 .. i])."""
    from numpy.lib.stride_tricks import sliding_window_view

    padded = np.r_[np.full(window - 1, -np.inf), np.asarray(values, dtype=float)]
    return sliding_window_view(padded, window).max(axis=1)


def choose(ctx: StepContext, load_rps: float, rules: Sequence[Restriction] | None = None) -> Allocations:
    """The cheapest allocations meeting the SLO at `load_rps` under `rules`, or, when none
    does, the fastest allowed ones (the step then carries an estimate above the SLO)."""
    choice = ctx.solver.solve(load_rps, rules) or ctx.solver.fastest(load_rps, rules)
    return ctx.solver.allocations(choice, load_rps)
