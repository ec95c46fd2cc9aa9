"""`hpa`: the Kubernetes Horizontal Pod Autoscaler, a runtime controller with no plan.

`hpa_decide` is the algorithm as a pure function (Ray's policy shape); `HpaController`
runs it on every stage every sync period on the simulated utilisation.

Per sync period (15 s), with `current` the replicas the deployment asks for:

    ratio   = utilisation / target            (utilisation averaged over ready replicas;
                                                on the way up, replicas still booting count
                                                as 0 %, as Kubernetes assumes for unready pods,
                                                and a ratio that then falls below 1 means no change)
    desired = current                         if |ratio - 1| <= tolerance (0.1)
            = ceil(current * ratio)           otherwise
    scale-up limit (Kubernetes default behaviour): at most max(2 x current, current + 4)
    scale-down stabilisation: the replicas used are the highest recommendation of the last
    300 s, so the deployment only shrinks after the load has been low for 5 minutes.

Clamped to [min_replicas, max_replicas]. The caller supplies the clock (`now_s`), so the
function never reads time itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from themis.planner.model.config import DEFAULT_MAX_REPLICAS
from themis.planner.model.cost import Prices
from themis.planner.model.serving import Group, Stage, StageAllocation
from themis.planner.simulation.observation import Observation

SYNC_PERIOD_S = 15.0
TOLERANCE = 0.1
SCALE_DOWN_STABILISATION_S = 300.0


@dataclass(frozen=True)
class HpaConfig:
    target_utilisation: float = 0.6
    min_replicas: int = 1
    max_replicas: int = DEFAULT_MAX_REPLICAS
    tolerance: float = TOLERANCE
    stabilisation_s: float = SCALE_DOWN_STABILISATION_S


@dataclass(frozen=True)
class HpaState:
    """Recommendations of the stabilisation window, as (time, replicas) pairs."""

    recommendations: tuple[tuple[float, int], ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class HpaContext:
    """What one HPA sync sees."""

    now_s: float
    current_replicas: int
    ready_replicas: int
    utilisation: float
    """Mean utilisation of the ready replicas over the last sync period (NaN: no data)."""
    config: HpaConfig
    state: HpaState = HpaState()


def hpa_decide(ctx: HpaContext) -> tuple[int, HpaState]:
    """Desired replicas after one sync, and the state to pass to the next sync."""
    cfg = ctx.config
    current = ctx.current_replicas
    if math.isnan(ctx.utilisation) or current == 0:
        raw = max(current, cfg.min_replicas)
    else:
        ratio = ctx.utilisation / cfg.target_utilisation
        if ratio > 1.0 and ctx.ready_replicas < current:
            # unready pods count as 0 % when scaling up (Kubernetes' conservative rule);
            # if that turns the scale-up into a scale-down, Kubernetes does nothing
            ratio = max(1.0, ctx.utilisation * ctx.ready_replicas / current / cfg.target_utilisation)
        # the epsilon keeps float noise in a ratio that is exactly 2.0 from adding a replica
        raw = current if abs(ratio - 1.0) <= cfg.tolerance else math.ceil(current * ratio - 1e-9)
        raw = min(raw, max(2 * current, current + 4))
    raw = min(max(raw, cfg.min_replicas), cfg.max_replicas)
    window = tuple((t, r) for t, r in ctx.state.recommendations if t > ctx.now_s - cfg.stabilisation_s)
    window += ((ctx.now_s, raw),)
    desired = raw if raw >= current else min(current, max(r for _, r in window))
    return desired, replace(ctx.state, recommendations=window)


@dataclass
class HpaController:
    """Reactive Kubernetes HPA on every stage: fixed cores and batch, replicas from utilisation."""

    allocations: list[StageAllocation]
    """Opening allocation per stage (one group each): fixes cores and batch per replica."""
    stages: tuple[Stage, ...]
    config: HpaConfig = field(default_factory=HpaConfig)
    prices: Prices = field(default_factory=Prices)
    policy: str = "hpa"
    sync_s: float = SYNC_PERIOD_S
    horizon_s: float = 0.0
    """The HPA has no plan: it syncs until the simulation ends (its last arrival or cost horizon)."""
    trace_start: str | None = None
    states: list[HpaState] = field(init=False)
    _started: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.states = [HpaState() for _ in self.allocations]
        if len(self.stages) != len(self.allocations):
            raise ValueError("one opening allocation per stage is needed")

    def resources(self) -> tuple[set[int], int]:
        return {a.groups[0].cores for a in self.allocations}, max(a.batch for a in self.allocations)

    def first_time_s(self) -> float:
        return 0.0

    def decide(self, obs: Observation) -> tuple[list[StageAllocation | None], float]:
        if not self._started:
            self._started = True
            return list(self.allocations), self.sync_s
        targets: list[StageAllocation | None] = []
        for s, (view, alloc) in enumerate(zip(obs.stages, self.allocations)):
            current = sum(g.replicas for g in view.groups)
            ctx = HpaContext(obs.now_s, current, view.ready_replicas, view.utilisation, self.config, self.states[s])
            desired, self.states[s] = hpa_decide(ctx)
            cores = alloc.groups[0].cores
            targets.append(None if desired == current else StageAllocation((Group(desired, cores),), alloc.batch, alloc.device))
        return targets, obs.now_s + self.sync_s
