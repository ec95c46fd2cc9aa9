"""The serving model's one replica-matching rule (`themis.planner.model.transitions`).

Scripted cases state each clause of the rule; property tests check what any transition
must satisfy: it reaches exactly the requested sizes, and it never removes a serving
replica while keeping a booting one.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from themis.planner.model.serving import Group
from themis.planner.model.transitions import ReplicaState, plan_transition

NOW = 100.0
"""The caller's clock: booting replicas are ready after it."""


def serving(id_: int, cores: int, *, busy: bool = False) -> ReplicaState:
    return ReplicaState(id_, cores, serving=True, busy=busy)


def booting(id_: int, cores: int, ready_at: float) -> ReplicaState:
    return ReplicaState(id_, cores, serving=False, ready_at=ready_at)


def after(replicas: list[ReplicaState], target: list[Group]) -> Counter:
    """The sizes the stage holds once the transition is applied."""
    t = plan_transition(replicas, target)
    resized = dict(t.resizes)
    kept = [resized.get(r.id, r.cores) for r in replicas if r.id not in set(t.removals)]
    return Counter(kept + list(t.adds))


def test_growing_resizes_the_running_replicas_to_the_largest_sizes_and_boots_the_rest() -> None:
    t = plan_transition([serving(0, 2), serving(1, 2)], [Group(2, 8), Group(3, 1)])
    assert sorted(t.resizes) == [(0, 8), (1, 8)] and t.adds == (1, 1, 1) and t.removals == ()


def test_a_replica_already_at_a_wanted_size_keeps_it() -> None:
    t = plan_transition([serving(0, 4), serving(1, 1)], [Group(1, 4), Group(1, 2), Group(2, 1)])
    assert t.resizes == ((1, 2),) and t.adds == (1, 1)


def test_shrinking_keeps_matching_sizes_and_removes_the_newest() -> None:
    t = plan_transition([serving(0, 4), serving(1, 2), serving(2, 1)], [Group(2, 1)])
    assert t.resizes == ((0, 1),) and t.removals == (1,)


def test_serving_replicas_stay_before_booting_ones_and_take_the_largest_size() -> None:
    t = plan_transition([serving(0, 2), booting(1, 4, NOW + 20)], [Group(1, 4)])
    assert t.resizes == ((0, 4),) and t.removals == (1,)
    t = plan_transition([serving(0, 2), booting(1, 4, NOW + 20)], [Group(1, 4), Group(1, 2)])
    assert sorted(t.resizes) == [(0, 4), (1, 2)]  # capacity now first


def test_idle_replicas_go_before_busy_ones() -> None:
    t = plan_transition([serving(0, 1), serving(1, 1, busy=True)], [Group(1, 1)])
    assert t.removals == (0,)


def test_the_same_allocation_again_changes_nothing() -> None:
    replicas = [serving(0, 8), serving(1, 8), booting(2, 1, NOW + 5)]
    assert not plan_transition(replicas, [Group(2, 8), Group(1, 1)]).changes


replica_sets = st.lists(
    st.tuples(st.sampled_from([1, 2, 4, 8]), st.booleans(), st.floats(0, 200), st.booleans()), max_size=8
).map(lambda rows: [ReplicaState(i, c, up, ready, busy and up) for i, (c, up, ready, busy) in enumerate(rows)])
targets = st.lists(st.tuples(st.integers(0, 4), st.sampled_from([1, 2, 4, 8])), max_size=3).map(
    lambda rows: [Group(n, c) for n, c in rows]
)


@given(replica_sets, targets)
def test_a_transition_reaches_exactly_the_requested_sizes(replicas, target) -> None:
    wanted = Counter(c for g in target for c in [g.cores] * g.replicas)
    assert after(replicas, target) == wanted


@given(replica_sets, targets)
def test_no_serving_replica_goes_while_a_booting_one_stays(replicas, target) -> None:
    t = plan_transition(replicas, target)
    removed = set(t.removals)
    kept_booting = [r for r in replicas if not r.serving and r.id not in removed]
    removed_serving = [r for r in replicas if r.serving and r.id in removed]
    assert not (kept_booting and removed_serving)
    assert len(t.removals) == len(set(t.removals)) and all(i in {r.id for r in replicas} for i in removed)
