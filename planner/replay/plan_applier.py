"""Applying a plan's steps to the reference server's live replicas, on time.

Which replicas a step resizes, adds and removes is the serving model's rule (SPEC), the
same one the simulator applies (`themis.planner.model.transitions`). `follow_schedule`
waits for each step's start and hands the server that step's allocation per stage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from themis.planner.model.serving import Schedule, StageAllocation


class StageTarget(Protocol):
    """What `follow_schedule` drives: the server's `apply` of one stage's allocation."""

    def apply(self, stage: int, allocation: StageAllocation) -> None: ...


async def follow_schedule(server: StageTarget, schedule: Schedule, clock_s: Callable[[], float]) -> None:
    """Apply every step after the first (the opening, applied before the clock starts) at
    its `t_start_s` on `clock_s` (seconds of trace time)."""
    for step in schedule.steps[1:]:
        while (delay_s := step.t_start_s - clock_s()) > 0:  # timers are millisecond-grained: never early
            await asyncio.sleep(delay_s if delay_s > 0.002 else 0)
        for stage, allocation in enumerate(step.stages):
            server.apply(stage, allocation)
