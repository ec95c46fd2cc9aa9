"""The one rule that turns a stage's running replicas into a requested allocation.

The planner (at interval granularity), the simulator (request by request) and the replay
server (real processes) all ask the same question: given the replicas a stage has now and
the groups (replicas x cores) asked for, which replicas are resized in place, which are
started, and which are drained and removed? They all call `plan_transition`, so they agree.

The rule (SPEC, "Serving model"):

1. **Which replicas stay.** Serving replicas before booting ones; among booting ones, the
   one that will be ready soonest. When more replicas serve than are asked for, those
   already at a size asked for stay first; then busy before idle (removing an idle
   replica frees its cores at once) and older before newer (the newest go first, as a
   Kubernetes ReplicaSet does). Replicas beyond those asked for are removed; a busy one
   finishes its current batch first.
2. **Which sizes they get.** Capacity now first, then the fewest resizes: the serving
   replicas take the largest sizes asked for, the booting ones the next largest in the
   order they will be ready, and new replicas boot at the smallest. Within each of these
   tiers a replica already at one of its tier's sizes keeps it and the other sizes are
   resized in place onto the others. This is how a `themis` surge step reads: running
   replicas go fast at once, new ones boot at the efficient size.
3. **When it takes effect** is the caller's business, in the caller's clock (seconds in the
   simulator and the replay server, planning intervals in the planner): a new replica
   serves a cold start after it was asked for, a resize lands a resize delay later, and a
   batch already running finishes at the speed it started with.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

from themis.planner.model.serving import Group


@dataclass(frozen=True)
class ReplicaState:
    """One live replica as the rule sees it."""

    id: int
    cores: int
    """Cores it has, or will have once a pending resize lands."""
    serving: bool
    """Ready and taking work (False: still booting)."""
    ready_at: float = 0.0
    """A booting replica: when it will serve, in the caller's clock (orders booting replicas)."""
    busy: bool = False


@dataclass(frozen=True)
class Transition:
    """What to do to a stage's replicas to reach a requested allocation."""

    resizes: tuple[tuple[int, int], ...] = ()
    """(replica id, new cores), readiest replica first."""
    adds: tuple[int, ...] = ()
    """Cores of each replica to start (it boots for the cold start)."""
    removals: tuple[int, ...] = ()
    """Replica ids to remove (a busy one drains its current batch first)."""

    @property
    def changes(self) -> bool:
        return bool(self.resizes or self.adds or self.removals)


def plan_transition(replicas: Sequence[ReplicaState], target: Sequence[Group]) -> Transition:
    """The resizes, additions and removals that turn `replicas` into `target`."""
    wanted = sorted((g.cores for g in target for _ in range(g.replicas)), reverse=True)
    kept = _kept(replicas, len(wanted), wanted)
    kept_ids = {r.id for r in kept}
    resizes = []
    dealt = 0
    for _, tier in groupby(kept, key=lambda r: (not r.serving, r.ready_at if not r.serving else 0.0)):
        tier = list(tier)
        sizes = _deal(tier, wanted[dealt : dealt + len(tier)])
        resizes += [(r.id, c) for r, c in zip(tier, sizes) if r.cores != c]
        dealt += len(tier)
    removals = tuple(r.id for r in replicas if r.id not in kept_ids)
    return Transition(tuple(resizes), tuple(wanted[dealt:]), removals)


def _kept(replicas: Sequence[ReplicaState], count: int, wanted: Sequence[int]) -> list[ReplicaState]:
    """The `count` replicas that stay (rule 1), readiest first."""
    serving = sorted((r for r in replicas if r.serving), key=lambda r: (not r.busy, r.id))
    booting = sorted((r for r in replicas if not r.serving), key=lambda r: (r.ready_at, r.id))
    if len(serving) < count:
        return serving + booting[: count - len(serving)]
    left = Counter(wanted)
    chosen: set[int] = set()
    for replica in serving:
        if left[replica.cores] > 0:
            left[replica.cores] -= 1
            chosen.add(replica.id)
    for replica in serving:
        if len(chosen) < count:
            chosen.add(replica.id)
    return [r for r in serving if r.id in chosen]


def _deal(tier: Sequence[ReplicaState], sizes: Sequence[int]) -> list[int]:
    """`sizes` dealt to one tier of equally ready replicas: a replica already at one of them
    keeps it; the rest go to the rest in order, largest first."""
    left = Counter(sizes)
    dealt: list[int | None] = []
    for replica in tier:
        if left[replica.cores] > 0:
            left[replica.cores] -= 1
            dealt.append(replica.cores)
        else:
            dealt.append(None)
    rest = iter(sorted(left.elements(), reverse=True))
    return [size if size is not None else next(rest) for size in dealt]
