"""Every stage's replicas over the planning intervals: what was requested, what serves.

The planner counts time in intervals. A replica requested at interval i serves from
interval i + `cold_steps` (the cold start rounded up to whole intervals); the opening
allocation (interval 0) is provisioned already. Resizes take effect within the interval
(a resize lands in about a second, far below an interval). Which replicas stay, grow,
shrink or go is the serving model's one rule, `themis.planner.model.transitions`, the same
the simulator and the replay server apply.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from themis.planner.model.serving import Group, StageAllocation
from themis.planner.model.transitions import ReplicaState, plan_transition


@dataclass
class StageReplicas:
    """One stage's live replicas (`ready_at` in intervals) and the groups last requested.

    `serving` is asked twice an interval and its answer only changes when a request changes
    the replicas or a booting one becomes ready, so the last answer is kept with the steps
    it holds for (from the last replica to become ready to the next one to)."""

    replicas: list[ReplicaState]
    requested: tuple[Group, ...] | None = None
    next_id: int = 0
    _serving: tuple[float, float, tuple[Group, ...]] | None = field(default=None, repr=False, compare=False)

    def request(self, groups: tuple[Group, ...], step: int, cold_steps: int) -> None:
        """Apply the transition to `groups` asked for at `step`."""
        now = [ReplicaState(r.id, r.cores, r.ready_at <= step, r.ready_at, r.busy) for r in self.replicas]
        transition = plan_transition(now, groups)
        removed = set(transition.removals)
        resized = dict(transition.resizes)
        kept = [
            ReplicaState(r.id, resized[r.id], r.serving, r.ready_at, r.busy) if r.id in resized else r
            for r in self.replicas
            if r.id not in removed
        ]
        for cores in transition.adds:
            kept.append(ReplicaState(self.next_id, cores, serving=cold_steps == 0, ready_at=step + cold_steps))
            self.next_id += 1
        self.replicas = kept
        self.requested = groups
        self._serving = None

    def serving(self, step: int) -> tuple[Group, ...]:
        """The replicas serving at `step`, grouped by cores (largest first)."""
        if self._serving is not None:
            since, until, groups = self._serving
            if since <= step < until:
                return groups
        counts: dict[int, int] = {}
        since, until = -math.inf, math.inf
        for replica in self.replicas:
            if replica.ready_at <= step:
                counts[replica.cores] = counts.get(replica.cores, 0) + 1
                since = max(since, replica.ready_at)
            else:
                until = min(until, replica.ready_at)
        groups = tuple(Group(n, c) for c, n in sorted(counts.items(), reverse=True))
        self._serving = (since, until, groups)
        return groups


class ReplicaTracker:
    """All stages' replicas through the intervals.

    Re-requesting the same groups changes nothing (a transition to what is already
    requested is empty once every replica is ready), so that case is skipped, which keeps
    long horizons cheap. The answer of `serving` is kept like each stage's, for the steps
    every stage's answer holds for.
    """

    def __init__(self, stages: int, cold_steps: int) -> None:
        self.cold_steps = cold_steps
        self.stages = [StageReplicas([]) for _ in range(stages)]
        self._serving: tuple[float, float, tuple[tuple[Group, ...], ...]] | None = None

    def request(self, step: int, allocations: Sequence[StageAllocation]) -> None:
        for stage, alloc in zip(self.stages, allocations):
            if alloc.groups != stage.requested:
                # the opening allocation is provisioned already (the service is running)
                stage.request(alloc.groups, step, 0 if step == 0 else self.cold_steps)
                self._serving = None

    def serving(self, step: int) -> tuple[tuple[Group, ...], ...]:
        if self._serving is not None:
            since, until, groups = self._serving
            if since <= step < until:
                return groups
        groups = tuple([stage.serving(step) for stage in self.stages])
        held = [stage._serving for stage in self.stages if stage._serving is not None]  # set by serving()
        since = max((h[0] for h in held), default=-math.inf)
        until = min((h[1] for h in held), default=math.inf)
        self._serving = (since, until, groups)
        return groups
