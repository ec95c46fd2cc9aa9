"""Replaying a plan: at each step's `t_start_s`, request that step's allocation.

The first step is the opening provisioning, ready at t = 0. `controller_for` picks a plan's
runtime controller from what the plan carries, not from its policy's name: a plan with
surge rules also reacts between its steps (`surge`), any other plan is replayed as is.
"""

from __future__ import annotations

import bisect
import math

from themis.planner.model.config import DEFAULT_SURGE_CHECK_S
from themis.planner.model.serving import Schedule, StageAllocation
from themis.planner.simulation.observation import Controller, Observation


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
        self.prices = schedule.prices
        self.trace_start = schedule.trace_start

    def resources(self) -> tuple[set[int], int]:
        """Cores per replica and the largest batch this controller can ask for."""
        return schedule_resources(self.schedule)

    def first_time_s(self) -> float:
        return self.starts_s[0]

    def step_index(self, now_s: float) -> int:
        """Index of the step in force at now_s (the first step before it starts)."""
        return max(0, bisect.bisect_right(self.starts_s, now_s) - 1)

    def next_start_s(self, now_s: float) -> float:
        i = bisect.bisect_right(self.starts_s, now_s)
        return self.starts_s[i] if i < len(self.starts_s) else math.inf

    def is_start(self, now_s: float) -> bool:
        """Does a planned step start at now_s?"""
        i = bisect.bisect_left(self.starts_s, now_s)
        return i < len(self.starts_s) and self.starts_s[i] == now_s

    def decide(self, obs: Observation) -> tuple[list[StageAllocation | None], float]:
        step = self.schedule.steps[self.step_index(obs.now_s)]
        return list(step.stages), self.next_start_s(obs.now_s)


def schedule_resources(schedule: Schedule) -> tuple[set[int], int]:
    cores = {g.cores for step in schedule.steps for a in step.stages for g in a.groups}
    batch = max((a.batch for step in schedule.steps for a in step.stages), default=1)
    return cores, batch


def controller_for(plan: Schedule | Controller, *, surge_check_s: float = DEFAULT_SURGE_CHECK_S) -> Controller:
    """The runtime controller of a plan: with surge rules it also absorbs surges between its
    steps (`SurgeController`, checking every `surge_check_s`); otherwise it is replayed. A
    controller passes through."""
    from themis.planner.simulation.controllers.surge import SurgeController  # builds on ScheduleController

    if not isinstance(plan, Schedule):
        return plan
    if plan.surge_rules:
        return SurgeController(plan, check_s=surge_check_s)
    return ScheduleController(plan)
