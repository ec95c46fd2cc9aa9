"""`hpa`: the Kubernetes Horizontal Pod Autoscaler, a runtime controller with no plan.

`hpa_decide` is one sync of Kubernetes' HPA controller as a pure function (Ray's policy
shape, the clock passed in): `GetResourceReplicas` of pkg/controller/podautoscaler/
replica_calculator.go for a CPU-utilisation target, then `reconcileAutoscaler` of
horizontal.go with `normalizeDesiredReplicas` (no `behavior` stanza, the default) or
`normalizeDesiredReplicasWithBehaviors` (with one, `hpa_behavior`). `HpaController` runs it
on every stage every sync period (15 s) on the simulated utilisation. The tests transcribe
Kubernetes' own table-driven cases (horizontal_test.go, replica_calculator_test.go).

One sync, with `current` the replicas the deployment asks for (spec.replicas), `ready` the
replicas serving and `unready` = current - ready the ones still booting:

1. Recommendation (replica_calculator.go). Utilisation is an integer percent of the cores
   requested, summed over the ready replicas and truncated (`int32(total * 100 / requests)`):
   ratio = floor(100 x utilisation) / target percent.
   - No ready replica (no metric): the sync does nothing.
   - Unready replicas are ignored. On a scale-down (ratio < 1) they are dropped from the
     count: recommendation = ceil(ratio x ready), or `current` when |ratio - 1| <= tolerance.
   - On a scale-up with unready replicas, these count as 0 % busy and the ratio is taken
     again over all of them; if that is within tolerance or below 1, or would recommend
     fewer than `current`, the recommendation is `current`; else ceil(new ratio x current).
   Kubernetes also ignores a replica's sample until a whole metric window has passed since
   it became ready; here a replica ready for part of the sync period contributes that part.
2. The first sync records `current` as a recommendation (`recordInitialRecommendation`), so
   the stabilisation window holds the starting count: nothing shrinks in the first 300 s.
3. Without `behavior` (`normalizeDesiredReplicas`): the recommendation is stored unclamped
   in the window; the stabilised value is the highest of the window's recommendations not
   older than 300 s (including this one); then it is clamped to [min, max] and to the
   scale-up limit max(2 x current, 4) (`scaleUpLimitFactor`, `scaleUpLimitMinimum`).
4. With `behavior`: stabilised = current raised to the lowest recommendation of the
   scale-up window and lowered to the highest of the scale-down window; then the policies
   limit the change against the replicas at the start of each policy's period (current
   minus the scale-ups plus the scale-downs of that period), `selectPolicy` choosing the
   largest (Max) or smallest (Min) change, or none (Disabled); then [min, max].
5. If current > max or current < min, the answer is max or min, before any of the above.

Kubernetes compares window times with a strict `Before` (default rules: a recommendation
exactly 300 s old still counts) or `After` (behaviour rules: it does not); this module does
the same, which matters here because simulated syncs fall on exact multiples of 15 s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from themis.planner.errors import PlanInputError
from themis.planner.model.config import DEFAULT_HPA_TARGET, DEFAULT_MAX_REPLICAS
from themis.planner.model.cost import Prices
from themis.planner.model.serving import Group, Stage, StageAllocation
from themis.planner.simulation.controllers.hpa_behavior import HpaBehavior, ScalingRules
from themis.planner.simulation.observation import Observation

SYNC_PERIOD_S = 15.0
"""`--horizontal-pod-autoscaler-sync-period`."""
TOLERANCE = 0.1
"""`--horizontal-pod-autoscaler-tolerance`."""
SCALE_DOWN_STABILISATION_S = 300.0
"""`--horizontal-pod-autoscaler-downscale-stabilization`."""
SCALE_UP_LIMIT_FACTOR = 2.0
"""horizontal.go `scaleUpLimitFactor` (Kubernetes' own tests set it to 8)."""
SCALE_UP_LIMIT_MINIMUM = 4
"""horizontal.go `scaleUpLimitMinimum`."""
PERCENT_ROUNDOFF = 1e-9
"""Added before truncating 100 x utilisation, so that 0.29 (28.999999999999996) reads 29 %."""

Recommendations = tuple[tuple[float, int], ...]
ScaleEvents = tuple[tuple[float, int], ...]


@dataclass(frozen=True)
class HpaConfig:
    """An HPA object: CPU utilisation target, replica bounds, and the controller's settings."""

    target_utilisation: float = DEFAULT_HPA_TARGET
    """Target average CPU utilisation (0-1]: `averageUtilization` / 100; for a `value` metric,
    the target average value per replica (`averageValue`)."""
    metric: str = "cpu"
    """`cpu` (utilisation, at most 1) or `value` (a per-replica metric such as requests waiting)."""
    min_replicas: int = 1
    max_replicas: int = DEFAULT_MAX_REPLICAS
    tolerance: float = TOLERANCE
    stabilisation_s: float = SCALE_DOWN_STABILISATION_S
    behavior: HpaBehavior | None = None
    """`spec.behavior`; None: the default rules (no stanza)."""
    scale_up_limit_factor: float = SCALE_UP_LIMIT_FACTOR
    scale_up_limit_minimum: int = SCALE_UP_LIMIT_MINIMUM

    def __post_init__(self) -> None:
        if self.metric not in ("cpu", "value"):
            raise PlanInputError(f"unknown HPA metric {self.metric!r}; use cpu or value")
        if not 0 < self.target_utilisation <= (1 if self.metric == "cpu" else float("inf")):
            bound = "(0, 1]" if self.metric == "cpu" else "a positive number"
            raise PlanInputError(f"must be {bound}, got {self.target_utilisation:g}", option="--hpa-target")
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise PlanInputError(f"need 1 <= min_replicas <= max_replicas, got {self.min_replicas} and {self.max_replicas}")

    @property
    def target_percent(self) -> float:
        """The target as Kubernetes holds it, a percent (float noise of x 100 removed)."""
        return round(100.0 * self.target_utilisation, 6)


@dataclass(frozen=True)
class HpaState:
    """What the controller remembers between syncs of one HPA."""

    recommendations: Recommendations | None = None
    """(time, unclamped recommendation) pairs still inside a stabilisation window; None
    until the first sync records the starting count (`recordInitialRecommendation`)."""
    scale_up_events: ScaleEvents = ()
    """(time, replicas added) of recent scale-ups (kept with `behavior` only)."""
    scale_down_events: ScaleEvents = ()
    """(time, replicas removed) of recent scale-downs (kept with `behavior` only)."""


@dataclass(frozen=True)
class HpaContext:
    """What one HPA sync sees."""

    now_s: float
    current_replicas: int
    """spec.replicas: every replica asked for, ready or booting."""
    ready_replicas: int
    utilisation: float
    """Busy / requested core-seconds of the ready replicas over the last sync period (NaN: no data)."""
    config: HpaConfig
    state: HpaState = HpaState()


def hpa_decide(ctx: HpaContext) -> tuple[int, HpaState]:
    """Desired replicas after one sync, and the state to pass to the next sync."""
    cfg, now, current = ctx.config, ctx.now_s, ctx.current_replicas
    recommendations = ctx.state.recommendations
    if recommendations is None:
        recommendations = ((now, current),)
    state = replace(ctx.state, recommendations=recommendations)
    if current == 0:  # Kubernetes: scaling is disabled while the target has no replicas
        return 0, state
    if current > cfg.max_replicas:
        desired = cfg.max_replicas
    elif current < cfg.min_replicas:
        desired = cfg.min_replicas
    else:
        up, down = tolerances(cfg)
        proposal = recommend(current, ctx.ready_replicas, ctx.utilisation, cfg.target_percent, up, down)
        if proposal is None:
            return current, state
        behavior = cfg.behavior
        if behavior is None:
            stabilised, recommendations = stabilise(recommendations, now, proposal, cfg.stabilisation_s)
            desired = limit_default(current, stabilised, cfg.min_replicas, cfg.max_replicas, cfg.scale_up_limit_factor,
                                    cfg.scale_up_limit_minimum)
        else:
            down_s = behavior.scale_down.stabilisation_window_s
            windows = (behavior.scale_up.stabilisation_window_s or 0.0, cfg.stabilisation_s if down_s is None else down_s)
            stabilised, recommendations = stabilise_with_behavior(recommendations, now, proposal, current, *windows)
            desired = limit_with_behavior(current, stabilised, cfg.min_replicas, cfg.max_replicas, behavior, state, now)
        state = replace(state, recommendations=recommendations)
    if desired != current and cfg.behavior is not None:
        state = record_scale_event(state, cfg.behavior, now, current, desired)
    return desired, state


def recommend(current: int, ready: int, utilisation: float, target_percent: float, tolerance_up: float = TOLERANCE,
              tolerance_down: float = TOLERANCE) -> int | None:
    """`GetResourceReplicas` for identical replicas: the replicas the metric asks for, before
    stabilisation and limits (None: no ready replica reports, so the sync does nothing)."""
    if ready <= 0 or not math.isfinite(utilisation):
        return None
    unready = max(current - ready, 0)

    def within(ratio: float) -> bool:
        return 1.0 - tolerance_down <= ratio <= 1.0 + tolerance_up

    ratio = _percent(utilisation) / target_percent
    if not (unready and ratio > 1.0):
        return current if within(ratio) else math.ceil(ratio * ready)
    # scale-up with unready replicas: they count as 0 % of their request
    new_ratio = _percent(utilisation * ready / (ready + unready)) / target_percent
    if within(new_ratio) or new_ratio < 1.0:
        return current
    return max(math.ceil(new_ratio * (ready + unready)), current)


def tolerances(cfg: HpaConfig) -> tuple[float, float]:
    """(scale-up, scale-down) tolerance: the behaviour's per direction, else the controller's."""
    if cfg.behavior is None:
        return cfg.tolerance, cfg.tolerance
    up, down = cfg.behavior.scale_up.tolerance, cfg.behavior.scale_down.tolerance
    return (cfg.tolerance if up is None else up), (cfg.tolerance if down is None else down)


def stabilise(recommendations: Recommendations, now: float, proposal: int, window_s: float) -> tuple[int, Recommendations]:
    """`stabilizeRecommendation`: the highest recommendation not older than the window (this
    one included), and the window with this one added, unclamped."""
    kept = tuple((t, r) for t, r in recommendations if t >= now - window_s)
    return max([proposal, *(r for _, r in kept)]), (*kept, (now, proposal))


def limit_default(current: int, desired: int, min_replicas: int, max_replicas: int,
                  factor: float = SCALE_UP_LIMIT_FACTOR, minimum: int = SCALE_UP_LIMIT_MINIMUM) -> int:
    """`convertDesiredReplicasWithRules`: within [min, max] and at most the scale-up limit
    max(factor x current, minimum)."""
    scale_up_limit = int(max(factor * current, minimum))
    if desired < min_replicas:
        return min_replicas
    return min(desired, max_replicas, scale_up_limit)


def stabilise_with_behavior(recommendations: Recommendations, now: float, proposal: int, current: int, up_window_s: float,
                            down_window_s: float) -> tuple[int, Recommendations]:
    """`stabilizeRecommendationWithBehaviors`: current, raised to the lowest recommendation of
    the scale-up window and lowered to the highest of the scale-down window (this one in both)."""
    up = min([proposal, *(r for t, r in recommendations if t > now - up_window_s)])
    down = max([proposal, *(r for t, r in recommendations if t > now - down_window_s)])
    kept = tuple((t, r) for t, r in recommendations if t > now - max(up_window_s, down_window_s))
    return min(max(current, up), down), (*kept, (now, proposal))


def limit_with_behavior(current: int, desired: int, min_replicas: int, max_replicas: int, behavior: HpaBehavior,
                        state: HpaState, now: float) -> int:
    """`convertDesiredReplicasWithBehaviorRate`: the policies' rate limit, then [min, max]."""
    if desired > current:
        limit = max(rate_limit(behavior.scale_up, current, state, now, up=True), current)
        return min(desired, max_replicas, limit)
    if desired < current:
        limit = min(rate_limit(behavior.scale_down, current, state, now, up=False), current)
        return max(desired, min_replicas, limit)
    return desired


def rate_limit(rules: ScalingRules, current: int, state: HpaState, now: float, *, up: bool) -> int:
    """`calculateScaleUpLimitWithScalingRules` / `calculateScaleDownLimitWithBehaviors`: the
    most (up) or fewest (down) replicas the policies allow now, each policy counting from the
    replicas at the start of its period."""
    if rules.select_policy == "Disabled":
        return current
    proposals = []
    for policy in rules.policies:
        added = sum(n for t, n in state.scale_up_events if t > now - policy.period_s)
        removed = sum(n for t, n in state.scale_down_events if t > now - policy.period_s)
        start = current - added + removed
        if policy.type == "Pods":
            proposals.append(start + policy.value if up else start - policy.value)
        elif up:
            proposals.append(math.ceil(start * (1 + policy.value / 100)))
        else:
            proposals.append(int(start * (1 - policy.value / 100)))
    if not proposals:
        return current
    widest = (rules.select_policy == "Max") == up  # Max: the largest change, up or down
    return max(proposals) if widest else min(proposals)


def record_scale_event(state: HpaState, behavior: HpaBehavior, now: float, current: int, desired: int) -> HpaState:
    """`storeScaleEvent`: remember the change; events older than the direction's longest
    policy period never count again and are dropped."""
    if desired > current:
        cutoff = now - behavior.scale_up.longest_period_s()
        kept = tuple(e for e in state.scale_up_events if e[0] >= cutoff)
        return replace(state, scale_up_events=(*kept, (now, desired - current)))
    cutoff = now - behavior.scale_down.longest_period_s()
    kept = tuple(e for e in state.scale_down_events if e[0] >= cutoff)
    return replace(state, scale_down_events=(*kept, (now, current - desired)))


def _percent(utilisation: float) -> int:
    return math.floor(100.0 * utilisation + PERCENT_ROUNDOFF)


@dataclass
class HpaController:
    """Reactive Kubernetes HPA on every stage: fixed cores and batch, replicas from utilisation.

    Its first decision is the opening allocation, and the HPA's first sync: it records the
    opening count in the stabilisation window and, with no metric yet, does nothing else.
    Then it syncs every `sync_s`.
    """

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
            for s, alloc in enumerate(self.allocations):
                opening = HpaContext(obs.now_s, alloc.replicas, 0, math.nan, self.config, self.states[s])
                _, self.states[s] = hpa_decide(opening)
            return list(self.allocations), obs.now_s + self.sync_s
        targets: list[StageAllocation | None] = []
        for s, (view, alloc) in enumerate(zip(obs.stages, self.allocations)):
            current = sum(g.replicas for g in view.groups)
            ctx = HpaContext(obs.now_s, current, view.ready_replicas, view.utilisation, self.config, self.states[s])
            desired, self.states[s] = hpa_decide(ctx)
            cores = alloc.groups[0].cores
            targets.append(None if desired == current else StageAllocation((Group(desired, cores),), alloc.batch, alloc.device))
        return targets, obs.now_s + self.sync_s
