"""Controllers that act inside the simulation (the `Controller` protocol of `simulate`).

- `ScheduleController` replays a plan: at each step's `t_start_s` it requests that step's
  allocation (the first step is the opening provisioning, ready at t = 0).
- `SurgeController` is themis at run time: the plan, plus a check every `check_s` seconds
  between planned steps. When the load observed over the last check exceeds what the
  running allocation carries, it resizes every replica of the stage in place to the
  cores the plan's surge rule (`schedule.extra["surge_rules"]`) names for that load. It
  only grows between steps; the next planned step resets the allocation.
- `HpaController` runs the Kubernetes HPA (`policies.hpa`) every 15 s on the simulated
  utilisation, with fixed cores and batch per replica.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from themis.planner.policies.hpa import SYNC_PERIOD_S, HpaConfig, HpaContext, HpaState, hpa_decide
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
    """themis at run time: the planned steps plus in-place vertical reaction to surges."""

    schedule: Schedule
    check_s: float = 5.0
    policy: str = "themis"
    plan: ScheduleController = field(init=False)
    surges: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.plan = ScheduleController(self.schedule)
        self.horizon_s = self.plan.horizon_s
        self.rules: list[list[dict[str, Any]]] = list(self.schedule.extra.get("surge_rules", []))
        self.stages = self.schedule.stages

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
            load_rps = obs.arrival_rate_rps * self.stages[s].visit_ratio  # rules are in stage load
            targets.append(_surge_target(view.groups, view.batch, load_rps, step.stages[s], rules))
        self.surges += sum(t is not None for t in targets)
        return targets, upcoming


def _surge_target(
    groups: tuple[Group, ...], batch: int, load_rps: float, planned: StageAllocation, rules: list[dict[str, Any]]
) -> StageAllocation | None:
    """The in-place resize that carries `load_rps`, or None when nothing needs to grow."""
    replicas = sum(g.replicas for g in groups)
    cores_now = max((g.cores for g in groups), default=0)
    rule = next((r for r in rules if int(r["replicas"]) == replicas and int(r["batch"]) == batch), None)
    if rule is None or replicas == 0 or not rule["levels"]:
        return None
    levels = sorted(rule["levels"], key=lambda lv: float(lv["max_rps"]))
    capacity_now = max((float(lv["max_rps"]) for lv in levels if int(lv["cores"]) <= cores_now), default=0.0)
    if load_rps <= capacity_now:
        return None
    level = next((lv for lv in levels if float(lv["max_rps"]) >= load_rps), levels[-1])
    cores = int(level["cores"])
    if cores <= cores_now and all(g.cores == cores for g in groups):
        return None
    cores = max(cores, cores_now)
    return StageAllocation((Group(replicas, cores),), batch, planned.device)


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
