"""The replica tracker keeps each stage's serving groups between changes; every answer must
still be the definition: the replicas ready by the step, counted by cores, largest first."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from themis.planner.model.serving import Group, StageAllocation
from themis.planner.optimise.replicas import ReplicaTracker, StageReplicas

GROUPS = st.lists(st.tuples(st.integers(1, 4), st.sampled_from([1, 2, 4, 8])), min_size=1, max_size=3).map(
    lambda pairs: tuple(Group(n, c) for c, n in sorted(Counter({c: n for n, c in pairs}).items(), reverse=True))
)


def serving_by_definition(stage: StageReplicas, step: int) -> tuple[Group, ...]:
    counts = Counter(r.cores for r in stage.replicas if r.ready_at <= step)
    return tuple(Group(n, c) for c, n in sorted(counts.items(), reverse=True))


@settings(max_examples=150, deadline=None)
@given(
    cold_steps=st.integers(0, 4),
    moves=st.lists(st.tuples(st.integers(0, 3), GROUPS, st.lists(st.integers(-2, 6), max_size=4)), max_size=12),
)
def test_serving_is_the_replicas_ready_by_the_step(cold_steps, moves) -> None:
    """Requests at increasing steps, each followed by questions about steps before, at and
    after it (in any order, repeated): every answer is the one from the definition."""
    tracker = ReplicaTracker(stages=2, cold_steps=cold_steps)
    step = 0
    for gap, groups, asked in moves:
        step += gap
        tracker.request(step, (StageAllocation(groups, batch=1), StageAllocation(groups[:1], batch=1)))
        for offset in [0, *asked, 0]:
            answer = tracker.serving(step + offset)
            assert answer == tuple(serving_by_definition(stage, step + offset) for stage in tracker.stages)
