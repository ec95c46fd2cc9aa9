"""Applying a plan's steps to the reference server's live replicas, on time.

Which replicas a step resizes, adds and removes is the serving model's rule (SPEC), the
same one the simulator applies: `plan_transition` below. `follow_schedule` waits for each
step's start and hands the server that step's allocation per stage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from themis.planner.serving import Group, Schedule, StageAllocation

# --- replaced by themis.planner.model.transitions at merge ---------------------------------
# The lead is extracting the simulator's `_State._match` as `themis.planner.model.transitions`
# (this API). Until it lands, this is a faithful copy of that rule, checked against the
# simulator in tests/planner/replay/test_plan_applier.py; at merge, delete from here to the
# end marker and import `ReplicaState`, `Transition`, `plan_transition` from there.


@dataclass(frozen=True)
class ReplicaState:
    """What the rule needs to know of one live (not removed) replica."""

    id: int
    cores: int
    """Cores it has, or will have once a pending resize lands."""
    ready: bool
    busy: bool


@dataclass(frozen=True)
class Transition:
    """The actions that turn a stage's live replicas into a target allocation."""

    resizes: tuple[tuple[int, int], ...]
    """(replica id, new cores): in-place resizes."""
    adds: tuple[int, ...]
    """Cores of each new replica (they boot: cold start)."""
    removals: tuple[int, ...]
    """Ids of replicas to drain (finish the current batch) and remove."""


def plan_transition(replicas: Sequence[ReplicaState], target: Sequence[Group]) -> Transition:
    """Growing (more replicas wanted than live): the live replicas, ready ones first and
    largest first, take the largest wanted sizes (resized in place where they differ) and
    new replicas take the rest. Otherwise replicas already at a wanted size stay (ready
    first), the other wanted sizes are resized onto the remaining replicas in the same
    order, and the rest are removed (booting first, then idle, then busy)."""
    wanted = sorted((g.cores for g in target for _ in range(g.replicas)), reverse=True)
    order = sorted(replicas, key=lambda r: (not r.ready, -r.cores, r.id))
    if len(wanted) > len(order):
        pairs = list(zip(order, wanted))
        added, extra = wanted[len(order):], []
    else:
        pairs, rest, unmatched = [], list(order), []
        for cores in wanted:
            hit = next((r for r in rest if r.cores == cores), None)
            if hit is None:
                unmatched.append(cores)
            else:
                rest.remove(hit)
                pairs.append((hit, cores))
        pairs += list(zip(rest, unmatched))
        added, extra = [], rest[len(unmatched):]
    removal_rank = sorted(extra, key=lambda r: (0 if not r.ready else 1 if not r.busy else 2, r.id))
    return Transition(
        resizes=tuple((r.id, cores) for r, cores in pairs if r.cores != cores),
        adds=tuple(added),
        removals=tuple(r.id for r in removal_rank),
    )


# --- end of the part replaced at merge -------------------------------------------------------


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
