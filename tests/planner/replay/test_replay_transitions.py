"""The reference server's serving rule is the simulator's: `plan_transition` against `_State._match`.

Until `themis.planner.model.transitions` lands (and this test with it), the replay package
holds a copy of the simulator's rule; this drives the real simulator into random replica
states (booting, idle, busy, resizes pending) and checks that the copy picks the same
resizes, new replicas and removals, in the same order.
"""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from themis.planner.replay.plan_applier import ReplicaState, Transition, plan_transition
from themis.planner.serving import Group, StageAllocation
from themis.planner.simulate import (
    _BOOTING,
    _BUSY,
    _I_STATE,
    ACT_ADD,
    ACT_REMOVE,
    ACT_RESIZE,
    ServiceTables,
    SimConfig,
    _State,
)

CORES = (1, 2, 4, 8)
groups = st.lists(st.tuples(st.integers(1, 3), st.sampled_from(CORES)), min_size=1, max_size=3)


def allocation(spec: list[tuple[int, int]]) -> StageAllocation:
    return StageAllocation(tuple(Group(r, c) for r, c in spec), batch=2)


@settings(max_examples=300)
@given(opening=groups, middle=groups, target=groups, busy_requests=st.integers(0, 12))
@example(opening=[(3, 1)], middle=[(3, 1)], target=[(1, 2)], busy_requests=3)  # removes a busy and an idle replica
def test_plan_transition_matches_the_simulator(opening, middle, target, busy_requests) -> None:
    # service 1 s per batch: requests arriving at 1.5 s keep replicas busy at the 2 s decision;
    # cold start 10 s: replicas added at 1 s are still booting at 2 s; resize 5 s: still pending.
    service = np.full((1, 3, len(CORES)), 1000.0)
    tables = ServiceTables(CORES, service)
    arrivals = np.full(busy_requests, 1.5)
    state = _State(arrivals, tables, SimConfig(cold_start_s=10.0, resize_s=5.0), horizon_s=100.0)
    state.apply(0.0, [allocation(opening)], opening=True)
    state.advance(1.0)
    state.apply(1.0, [allocation(middle)], opening=False)
    state.advance(2.0)

    live = state.live_slots(0)
    replicas = [
        ReplicaState(slot, CORES[state.target_cidx(slot)], int(state.ri[slot, _I_STATE]) != _BOOTING, int(state.ri[slot, _I_STATE]) == _BUSY)
        for slot in live
    ]
    rows = state._match(0, allocation(target), opening=False)
    expected = Transition(
        resizes=tuple((slot, CORES[c]) for kind, slot, c in rows if kind == ACT_RESIZE),
        adds=tuple(CORES[c] for kind, _, c in rows if kind == ACT_ADD),
        removals=tuple(slot for kind, slot, _ in rows if kind == ACT_REMOVE),
    )
    assert plan_transition(replicas, allocation(target).groups) == expected


def test_a_surge_resizes_the_running_replica_and_boots_the_rest() -> None:
    running = [ReplicaState(0, 1, ready=True, busy=True)]
    assert plan_transition(running, (Group(1, 4), Group(2, 1))) == Transition(resizes=((0, 4),), adds=(1, 1), removals=())


def test_shrinking_removes_booting_then_idle_then_busy() -> None:
    replicas = [ReplicaState(0, 2, True, True), ReplicaState(1, 2, True, False), ReplicaState(2, 2, False, False)]
    assert plan_transition(replicas, (Group(1, 2),)).removals == (2, 1)
    assert plan_transition(replicas, ()).removals == (2, 1, 0)
