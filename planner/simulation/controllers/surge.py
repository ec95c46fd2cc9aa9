"""`themis` at run time: the planned steps, plus in-place vertical reaction to surges.

Between planned steps a `SurgeController` checks the recent arrivals every `check_s`
seconds and, when they are beyond what the running replicas carry, resizes the replicas of
that stage in place to the cores the plan's surge rule (`Schedule.surge_rules`) names for
that load. The next planned step applies the plan as it is, which releases the cores.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from themis.planner.model.serving import Group, Schedule, StageAllocation, SurgeLevel, SurgeRule
from themis.planner.simulation.controllers.schedule import ScheduleController, schedule_resources
from themis.planner.simulation.observation import Observation


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
        self.rules = self.schedule.surge_rules
        self.stages = self.schedule.stages
        self.prices = self.schedule.prices
        self.trace_start = self.schedule.trace_start
        self._history: deque[tuple[float, int]] = deque()
        """(time, cumulative arrivals) at each decision, as far back as the longest window."""
        self._arrived = 0

    def resources(self) -> tuple[set[int], int]:
        cores, batch = schedule_resources(self.schedule)
        for stage_rules in self.rules:
            for rule in stage_rules:
                cores |= {level.cores for level in rule.levels}
                batch = max(batch, rule.batch)
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
            rules = self.rules[s] if s < len(self.rules) else ()
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


def _rule_levels(groups: tuple[Group, ...], batch: int, rules: tuple[SurgeRule, ...]) -> list[SurgeLevel]:
    """The surge rule's levels for the running replica count and batch, by load (or [])."""
    replicas = sum(g.replicas for g in groups)
    rule = next((r for r in rules if r.replicas == replicas and r.batch == batch), None)
    if rule is None or replicas == 0:
        return []
    return sorted(rule.levels, key=lambda lv: lv.max_rps)


def _surge_load_rps(
    groups: tuple[Group, ...],
    batch: int,
    counts: list[tuple[float, float]],
    visit_ratio: float,
    margin_sd: float,
    rules: tuple[SurgeRule, ...],
) -> float | None:
    """The highest stage load over the windows that see a surge, or None (no surge).

    `counts` are (entrance arrivals, seconds) per window; a window sees a surge when its
    arrivals exceed what the running replicas carry over it by more than `margin_sd`
    Poisson standard deviations."""
    levels = _rule_levels(groups, batch, rules)
    if not levels:
        return None
    cores_now = max(g.cores for g in groups)
    carry_rps = max((lv.max_rps for lv in levels if lv.cores <= cores_now), default=0.0) / visit_ratio
    seen = [n / w for n, w in counts if w > 0 and n > carry_rps * w + margin_sd * math.sqrt(carry_rps * w)]
    return max(seen) * visit_ratio if seen else None


def _surge_target(
    groups: tuple[Group, ...], batch: int, load_rps: float, planned: StageAllocation, rules: tuple[SurgeRule, ...]
) -> StageAllocation | None:
    """Every replica resized in place to the fewest cores whose level carries `load_rps`
    (the largest level if none does), never fewer than now; None when nothing changes."""
    levels = _rule_levels(groups, batch, rules)
    if not levels:
        return None
    level = next((lv for lv in levels if lv.max_rps >= load_rps), levels[-1])
    cores = max(level.cores, max(g.cores for g in groups))
    if all(g.cores == cores for g in groups):
        return None
    return StageAllocation((Group(sum(g.replicas for g in groups), cores),), batch, planned.device)
