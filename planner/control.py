"""Controllers that act inside the simulation (the `Controller` protocol of `simulate`).

- `ScheduleController` replays a plan: at each step's `t_start_s` it requests that step's
  allocation (the first step is the opening provisioning, ready at t = 0).
- `SurgeController` is themis at run time: the plan, plus a check every `check_s` seconds
  between planned steps. It resizes every replica of a stage in place (up only) when the
  arrivals over one of its recent windows (`windows_s`) are beyond what the running
  replicas carry by more than Poisson noise (see `SurgeController`); the cores are those
  the plan's surge rule (`schedule.extra["surge_rules"]`) names for that load. Between
  planned steps it never shrinks; the next planned step applies the plan, which is what
  releases surge cores.
- `HpaController` runs the Kubernetes HPA (`policies.hpa`) every 15 s on the simulated
  utilisation, with fixed cores and batch per replica.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from themis.planner.policies.hpa import (
    SYNC_PERIOD_S,
    HpaConfig,
    HpaContext,
    HpaState,
    hpa_decide,
)
from themis.planner.serving import Group, Schedule, Stage, StageAllocation

if TYPE_CHECKING:  # the simulator pulls in numba; controllers only need its Observation type
    from themis.planner.simulate import Observation


class ScheduleController:
    """Requests each planned step's allocation at its start time."""

    def __init__(self, schedule: Schedule) -> None:
        if not schedule.steps:
            raise ValueError("the schedule has no steps")
        self.schedule = schedule
        self.policy = schedule.policy
        self.horizon_s = schedule.steps[-1].t_end_s
        self.starts_s = [step.t_start_s for step in schedule.steps]
        self.stages = schedule.stages

    def resources(self) -> tuple[set[int], int]:
        """Cores per replica and the largest batch this controller can ask for."""
        return _schedule_resources(self.schedule)

    def first_time_s(self) -> float:
        return self.starts_s[0]

    def step_index(self, now_s: float) -> int:
        """Index of the step in force at now_s."""
        i = 0
        while i + 1 < len(self.starts_s) and self.starts_s[i + 1] <= now_s:
            i += 1
        return i

    def next_start_s(self, now_s: float) -> float:
        return next((t for t in self.starts_s if t > now_s), math.inf)

    def decide(self, obs: Observation) -> tuple[list[StageAllocation | None], float]:
        step = self.schedule.steps[self.step_index(obs.now_s)]
        return list(step.stages), self.next_start_s(obs.now_s)


@dataclass
class SurgeController:
    """themis at run time: the planned steps plus in-place vertical reaction to surges.

    The rule, checked every `check_s` seconds between planned steps, per stage:

    - `carry` is the largest load the running replicas carry at their current cores (the
      surge rule's `max_rps` for the stage's replica count and batch: the load at which
      the latency estimate reaches the stage's budget).
    - For each window length w in `windows_s` (only once w seconds have been observed; a
      window spans whole checks, at least one), with n the arrivals in it: a surge is seen when
      n > carry * w + `margin_sd` * sqrt(carry * w), that is when the count is more than
      `margin_sd` Poisson standard deviations above what the replicas carry. Short windows
      catch sharp bursts within seconds, long ones a moderate excess that lasts; noise
      around a load the plan already carries does not trigger.
    - On a surge every replica of the stage is resized in place to the fewest cores whose
      level carries the highest load seen over the triggering windows (n / w); a resize
      lands `resize_s` later (the simulator's rule). Cores only grow between planned steps;
      the next planned step applies the plan as it is, which is what releases them (the
      plan itself holds capacity over its scale-down window).

    Rules are in stage load (entrance load x the stage's visit ratio); the count test runs on
    entrance arrivals against carry / visit ratio, where the Poisson noise is.
    """

    schedule: Schedule
    check_s: float = 1.0
    windows_s: tuple[float, ...] = (1.0, 5.0, 15.0)
    margin_sd: float = 3.0
    policy: str = "themis"
    plan: ScheduleController = field(init=False)
    surges: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.check_s <= 0 or not self.windows_s or min(self.windows_s) <= 0 or self.margin_sd < 0:
            raise ValueError("check_s and windows_s must be positive, margin_sd not negative")
        self.plan = ScheduleController(self.schedule)
        self.horizon_s = self.plan.horizon_s
        self.rules: list[list[dict[str, Any]]] = list(self.schedule.extra.get("surge_rules", []))
        self.stages = self.schedule.stages
        self._history: deque[tuple[float, int]] = deque()
        """(time, cumulative arrivals) at each decision, as far back as the longest window."""
        self._arrived = 0

    def resources(self) -> tuple[set[int], int]:
        cores, batch = _schedule_resources(self.schedule)
        for stage_rules in self.rules:
            for rule in stage_rules:
                cores |= {int(level["cores"]) for level in rule["levels"]}
                batch = max(batch, int(rule["batch"]))
        return cores, batch

    def first_time_s(self) -> float:
        return self.plan.first_time_s()

    def decide(self, obs: Observation) -> tuple[list[StageAllocation | None], float]:
        counts = self._record(obs)
        next_step_s = self.plan.next_start_s(obs.now_s)
        next_check_s = obs.now_s + self.check_s
        upcoming = min(next_step_s, next_check_s if next_check_s < self.horizon_s else math.inf)
        if obs.now_s in self.plan.starts_s:
            targets, _ = self.plan.decide(obs)
            return targets, upcoming
        step = self.schedule.steps[self.plan.step_index(obs.now_s)]
        targets: list[StageAllocation | None] = []
        for s, view in enumerate(obs.stages):
            rules = self.rules[s] if s < len(self.rules) else []
            surge_rps = _surge_load_rps(view.groups, view.batch, counts, self.stages[s].visit_ratio, self.margin_sd, rules)
            targets.append(None if surge_rps is None else _surge_target(view.groups, view.batch, surge_rps, step.stages[s], rules))
        self.surges += sum(t is not None for t in targets)
        return targets, upcoming

    def _record(self, obs: Observation) -> list[tuple[float, float]]:
        """Log this decision's arrivals; (arrivals, seconds) over each window fully observed."""
        self._arrived += obs.arrivals
        self._history.append((obs.now_s, self._arrived))
        longest = max(self.windows_s)
        while len(self._history) > 1 and self._history[1][0] <= obs.now_s - longest + 1e-9:
            self._history.popleft()
        out = []
        for w in self.windows_s:
            start = next((h for h in reversed(self._history) if h[0] <= obs.now_s - w + 1e-9), None)
            if start is not None:
                out.append((float(self._arrived - start[1]), obs.now_s - start[0]))
        return out


def _rule_levels(groups: tuple[Group, ...], batch: int, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The surge rule's levels for the running replica count and batch, by load (or [])."""
    replicas = sum(g.replicas for g in groups)
    rule = next((r for r in rules if int(r["replicas"]) == replicas and int(r["batch"]) == batch), None)
    if rule is None or replicas == 0:
        return []
    return sorted(rule["levels"], key=lambda lv: float(lv["max_rps"]))


def _surge_load_rps(
    groups: tuple[Group, ...],
    batch: int,
    counts: list[tuple[float, float]],
    visit_ratio: float,
    margin_sd: float,
    rules: list[dict[str, Any]],
) -> float | None:
    """The highest stage load over the windows that see a surge, or None (no surge).

    `counts` are (entrance arrivals, seconds) per window; a window sees a surge when its
    arrivals exceed what the running replicas carry over it by more than `margin_sd`
    Poisson standard deviations."""
    levels = _rule_levels(groups, batch, rules)
    if not levels:
        return None
    cores_now = max(g.cores for g in groups)
    carry_rps = max((float(lv["max_rps"]) for lv in levels if int(lv["cores"]) <= cores_now), default=0.0) / visit_ratio
    seen = [n / w for n, w in counts if w > 0 and n > carry_rps * w + margin_sd * math.sqrt(carry_rps * w)]
    return max(seen) * visit_ratio if seen else None


def _surge_target(
    groups: tuple[Group, ...], batch: int, load_rps: float, planned: StageAllocation, rules: list[dict[str, Any]]
) -> StageAllocation | None:
    """Every replica resized in place to the fewest cores whose level carries `load_rps`
    (the largest level if none does), never fewer than now; None when nothing changes."""
    levels = _rule_levels(groups, batch, rules)
    if not levels:
        return None
    level = next((lv for lv in levels if float(lv["max_rps"]) >= load_rps), levels[-1])
    cores = max(int(level["cores"]), max(g.cores for g in groups))
    if all(g.cores == cores for g in groups):
        return None
    return StageAllocation((Group(sum(g.replicas for g in groups), cores),), batch, planned.device)


@dataclass
class HpaController:
    """Reactive Kubernetes HPA on every stage: fixed cores and batch, replicas from utilisation."""

    allocations: list[StageAllocation]
    """Opening allocation per stage (one group each): fixes cores and batch per replica."""
    stages: tuple[Stage, ...]
    config: HpaConfig = field(default_factory=HpaConfig)
    horizon_s: float = 0.0
    policy: str = "hpa"
    sync_s: float = SYNC_PERIOD_S
    price_per_core_hour: float = 0.0
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
        next_s = obs.now_s + self.sync_s
        return targets, next_s if next_s < self.horizon_s else math.inf


def _schedule_resources(schedule: Schedule) -> tuple[set[int], int]:
    cores = {g.cores for step in schedule.steps for a in step.stages for g in a.groups}
    batch = max((a.batch for step in schedule.steps for a in step.stages), default=1)
    return cores, batch


def controller_for(plan: Any) -> Any:
    """The run-time controller of a plan: themis plans with surge rules react to surges,
    other schedules are replayed; a controller passes through."""
    if not isinstance(plan, Schedule):
        return plan
    if plan.policy == "themis" and plan.extra.get("surge_rules"):
        return SurgeController(plan)
    return ScheduleController(plan)
