"""The plan's runtime controller, run against the reference server's real queues and replicas.

The reference server is driven by the very controller the simulator runs for the plan
(`controller_for`: the planned steps, plus the `themis` surge controller when the plan
carries surge rules), through the simulator's `Controller` protocol and nothing else: at
each decision time the controller is handed an `Observation` of the real server (arrivals
the front end received, each stage's requested replicas, ready replicas, queue length and
utilisation since the previous decision) and its targets are applied by the serving
model's transition rule. So whatever controller the simulator runs for a plan, the
server runs too, unchanged.

Decision times are the controller's own, on the trace clock; the observation is taken
when the clock reaches them (milliseconds late at most) but is stamped with the nominal
time, as a controller may key its steps on it.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from typing import Protocol

from themis.planner.errors import PlanInputError
from themis.planner.model.serving import StageAllocation
from themis.planner.simulation.observation import Controller, Observation


class ControlledServer(Protocol):
    """What a controller drives: an observation of the running system, and one stage's allocation."""

    def observe(self, now_s: float) -> Observation: ...

    def apply(self, stage: int, allocation: StageAllocation) -> bool: ...


def opening_allocations(server: ControlledServer, controller: Controller, stages: int) -> tuple[list[StageAllocation], float]:
    """The controller's first decision (the opening provisioning, warmed up before t = 0) and
    the time of its next one."""
    targets, next_s = controller.decide(server.observe(controller.first_time_s()))
    if len(targets) != stages or any(t is None for t in targets):
        raise PlanInputError(f"the plan's controller opened {len(targets)} stage allocation(s) for {stages} stage(s)", option="--plan")
    return [t for t in targets if t is not None], next_s


async def follow_controller(
    server: ControlledServer, controller: Controller, first_s: float, clock_s: Callable[[], float]
) -> None:
    """Decide at `first_s` and then whenever the controller asks (on `clock_s`, seconds of
    trace time), applying every stage target it gives; ends when it asks for no more."""
    t_s = first_s
    while math.isfinite(t_s):
        while (delay_s := t_s - clock_s()) > 0:  # timers are millisecond-grained: never early
            await asyncio.sleep(delay_s if delay_s > 0.002 else 0)
        targets, next_s = controller.decide(server.observe(t_s))
        apply_targets(server, targets)
        if next_s <= t_s:
            raise PlanInputError(f"the plan's controller asked for a decision at {next_s} s, not after {t_s} s", option="--plan")
        t_s = next_s


def apply_targets(server: ControlledServer, targets: Sequence[StageAllocation | None]) -> list[bool]:
    """Apply each stage's target (None keeps it); per stage, whether anything changed."""
    return [target is not None and server.apply(stage, target) for stage, target in enumerate(targets)]
