"""Replicas that come and go in the LLM simulator: hand-computed schedules (a cold start, a
backlog at the router, draining, a removal while booting), agreement with the SimPy reference
on random fleets, and stepping (`run(until)`) that changes nothing."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.simpy_llm_reference import simulate_fleet_reference

from themis.planner.errors import PlanInputError
from themis.planner.llm.iteration import IterationTimeModel
from themis.planner.llm.service import LlmRequests, ServerConfig
from themis.planner.llm.simulate import LlmFleet, ReplicaType, Slot, simulate_fleet, simulate_llm


def model(alpha=10.0, beta=1.0, gamma=2.0, delta=0.0, epsilon=0.0, cores=1) -> IterationTimeModel:
    return IterationTimeModel("hand", "cpu", "", cores, np.array([alpha, beta, gamma, delta, epsilon]))


def requests(*rows: tuple[float, int, int]) -> LlmRequests:
    arrival, prompt, output = zip(*rows)
    return LlmRequests(np.array(arrival), np.array(prompt), np.array(output))


SERVER = ServerConfig(kv_capacity_tokens=1024, block_tokens=1)
ONE = [ReplicaType(model(), SERVER)]


def test_requests_wait_at_the_router_for_a_booting_replica_then_go_in_one_batch():
    # T = 10 ms + 1 ms per prefill token + 2 ms per decode; the only replica is ready at 50 ms
    reqs = requests((0.0, 5, 2), (0.010, 3, 2), (0.060, 4, 1))  # A, B wait; C arrives while it runs
    result = simulate_fleet(reqs, ONE, [Slot(0, 0.0, 0.050)])
    # it1 [50, 68): A 5 + B 3 prefill          -> A1, B1 at 68
    # it2 [68, 86): A, B decode (4) + C 4 (4)   -> A2, B2 done, C1 done at 86
    np.testing.assert_allclose(result.first_token_s, [0.068, 0.068, 0.086], atol=1e-12)
    np.testing.assert_allclose(result.last_token_s, [0.086, 0.086, 0.086], atol=1e-12)
    assert result.iterations.tolist() == [2] and result.replica.tolist() == [0, 0, 0]
    assert result.ready_s.tolist() == [0.050] and result.gone_s.tolist() == [math.inf]


def test_a_new_replica_takes_arrivals_once_ready_and_a_removed_one_drains_first():
    # slot 0 from the start, removed at 30 ms; slot 1 asked for at 0, ready at 20 ms
    reqs = requests((0.0, 10, 3), (0.005, 10, 1), (0.025, 4, 1), (0.035, 2, 1))  # A, B, C, D
    slots = [Slot(0, 0.0, 0.0, remove_s=0.030), Slot(0, 0.0, 0.020)]
    result = simulate_fleet(reqs, ONE, slots)
    # slot 0: it1 [0, 20) A prefill 10 -> A1 at 20; B (arrived at 5 ms, slot 1 still booting) waits at slot 0
    #         it2 [20, 42) A decode + B prefill 10 -> A2, B1 (done) at 42; removal at 30 ms: no new work
    #         it3 [42, 54) A decode -> A3 done at 54: slot 0 is gone at 54
    # slot 1: ready at 20; C (25 ms) goes to it (fewest unfinished): it1 [25, 39) -> C done at 39
    #         D (35 ms): slot 0 is being removed, so D waits at slot 1: it2 [39, 51) prefill 2 -> D done at 51
    np.testing.assert_allclose(result.first_token_s, [0.020, 0.042, 0.039, 0.051], atol=1e-12)
    np.testing.assert_allclose(result.last_token_s, [0.054, 0.042, 0.039, 0.051], atol=1e-12)
    assert result.replica.tolist() == [0, 0, 1, 1]
    np.testing.assert_allclose(result.gone_s, [0.054, math.inf], atol=1e-12)


def test_a_replica_removed_while_booting_never_serves():
    reqs = requests((0.0, 4, 1), (0.5, 4, 1))
    result = simulate_fleet(reqs, ONE, [Slot(0, 0.0, 0.0), Slot(0, 0.0, 1.0, remove_s=0.4)])
    assert result.replica.tolist() == [0, 0] and result.iterations.tolist() == [2, 0]
    assert result.gone_s[1] == pytest.approx(0.4)


def test_requests_left_at_the_router_with_no_replica_are_never_served():
    result = simulate_fleet(requests((0.0, 4, 1), (2.0, 4, 1)), ONE, [Slot(0, 0.0, 0.0, remove_s=1.0)])
    assert result.replica.tolist() == [0, -1] and result.rejected == 1
    assert np.isinf(result.ttft_s[1]) and result.tokens_served() == 5


def test_mixed_types_run_their_own_iteration_times_and_limits():
    fast, slow = ReplicaType(model(alpha=1.0, cores=4), SERVER), ReplicaType(model(alpha=10.0), SERVER)
    reqs = requests((0.0, 10, 1), (0.0, 10, 1))
    result = simulate_fleet(reqs, [fast, slow], [Slot(0, 0.0, 0.0), Slot(1, 0.0, 0.0)])
    np.testing.assert_allclose(result.first_token_s, [0.011, 0.020], atol=1e-12)
    assert fast.units == 4 and fast.device == "cpu" and result.slot_type.tolist() == [0, 1]


def test_types_must_share_block_size_and_chunking():
    other = ReplicaType(model(), ServerConfig(kv_capacity_tokens=1024, block_tokens=16))
    with pytest.raises(PlanInputError, match="block_tokens"):
        LlmFleet(requests((0.0, 1, 1)), [ONE[0], other])


# --------------------------------------------------------------------- SimPy agreement


@st.composite
def fleets(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(1, 40))
    grid = draw(st.sampled_from([0.0, 0.01]))  # on a grid, arrivals tie with replica events and iteration ends
    arrivals = np.sort(rng.uniform(0.0, draw(st.sampled_from([0.3, 2.0])), n))
    if grid:
        arrivals = np.round(arrivals / grid) * grid
    reqs = LlmRequests(arrivals, rng.integers(1, 40, n), rng.integers(1, 20, n))
    block = int(draw(st.sampled_from([1, 4])))
    chunked = draw(st.booleans())
    types = []
    for _ in range(draw(st.integers(1, 2))):
        coef = rng.uniform(0, 1, 5) * [8.0, 0.5, 1.0, 0.05, 0.01] + [0.25, 0, 0, 0, 0]
        kv = int(rng.integers(48, 200)) // block * block
        budget = int(rng.integers(1, 80)) if chunked else int(rng.integers(kv, kv + 40))
        server = ServerConfig(kv_capacity_tokens=kv, max_num_seqs=int(rng.integers(1, 7)), max_num_batched_tokens=budget,
                              chunked_prefill=chunked, block_tokens=block)
        types.append((IterationTimeModel("random", "cpu", "", 1, coef), server))
    slots = []
    for _ in range(draw(st.integers(1, 4))):
        ready = float(np.round(rng.uniform(0, 1.0) / 0.01) * 0.01) if rng.random() < 0.7 else 0.0
        remove = float(np.round(rng.uniform(0, 2.0) / 0.01) * 0.01) if rng.random() < 0.5 else math.inf
        slots.append((int(rng.integers(0, len(types))), ready, remove))
    return reqs, types, slots


def _ours(reqs, types, slots):
    return simulate_fleet(reqs, [ReplicaType(m, s) for m, s in types], [Slot(k, 0.0, ready, remove) for k, ready, remove in slots])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=fleets())
def test_fleet_token_times_are_identical_to_the_simpy_reference(scenario):
    reqs, types, slots = scenario
    ours = _ours(reqs, types, slots)
    ref = simulate_fleet_reference(reqs, types, slots)
    for key in ("first_token_s", "last_token_s", "replica", "preemptions", "iterations", "gone_s"):
        np.testing.assert_array_equal(getattr(ours, key), ref[key], err_msg=key)
    np.testing.assert_allclose(ours.busy_s, ref["busy_s"], rtol=1e-12)


def test_the_random_fleets_exercise_backlogs_removals_and_draining():
    """Guard against a strategy that stops reaching the interesting rules."""
    seen = {"unserved": 0, "drained": 0, "never_ready": 0, "backlog": 0}

    @settings(max_examples=200, deadline=None, database=None, derandomize=True)
    @given(scenario=fleets())
    def collect(scenario):
        reqs, types, slots = scenario
        result = _ours(reqs, types, slots)
        seen["unserved"] += int(result.rejected > 0)
        seen["drained"] += int(np.any(np.isfinite(result.gone_s) & (result.iterations > 0)))
        seen["never_ready"] += int(any(remove <= ready for _, ready, remove in slots))
        seen["backlog"] += int(np.any(result.first_token_s - reqs.arrival_s > 0.05) and min(r for _, r, _ in slots) > 0)

    collect()
    assert min(seen.values()) >= 3, seen


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=fleets(), cuts=st.lists(st.floats(0.0, 3.0), max_size=6))
def test_running_in_steps_changes_nothing(scenario, cuts):
    reqs, types, slots = scenario
    whole = _ours(reqs, types, slots)
    fleet = LlmFleet(reqs, [ReplicaType(m, s) for m, s in types])
    for k, ready, remove in slots:
        index = fleet.add(k, 0.0, ready)
        fleet.remove(index, remove)
    for cut in sorted(cuts):
        fleet.run(cut)
    fleet.run()
    stepped = fleet.result()
    np.testing.assert_array_equal(stepped.first_token_s, whole.first_token_s)
    np.testing.assert_array_equal(stepped.last_token_s, whole.last_token_s)
    np.testing.assert_array_equal(stepped.gone_s, whole.gone_s)


def test_one_type_all_ready_is_the_plain_simulation():
    reqs = requests((0.0, 6, 3), (0.005, 10, 2), (0.010, 4, 2))
    plain = simulate_llm(reqs, model(), SERVER, replicas=2)
    fleet = simulate_fleet(reqs, ONE, [Slot(0, 0.0, 0.0), Slot(0, 0.0, 0.0)])
    np.testing.assert_array_equal(plain.first_token_s, fleet.first_token_s)
    np.testing.assert_array_equal(plain.last_token_s, fleet.last_token_s)
