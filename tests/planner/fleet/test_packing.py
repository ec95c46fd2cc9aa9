"""First-fit decreasing per pod shape against the textbook one-pod-at-a-time loop."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.packing_reference import first_fit_decreasing_one_by_one

from themis.planner.fleet.errors import FleetError
from themis.planner.fleet.packing import NodeType, first_fit_decreasing

shapes = st.tuples(st.sampled_from([1, 2, 3, 4, 8, 16]), st.sampled_from([0, 200, 300, 1000, 5000, 20000]))


@given(st.dictionaries(shapes, st.integers(0, 40), max_size=8), st.sampled_from([16, 17, 32]), st.sampled_from([32768.0, 65536.0]))
def test_grouped_ffd_opens_exactly_the_nodes_of_the_one_by_one_loop(pods, node_cores, node_memory) -> None:
    flat = [shape for shape, count in pods.items() for _ in range(count)]
    node = NodeType(node_cores, node_memory)
    nodes = first_fit_decreasing(pods, node)
    assert nodes == first_fit_decreasing_one_by_one(flat, node_cores, node_memory)
    assert nodes >= math.ceil(sum(c for c, _ in flat) / node_cores)  # never below the cores' lower bound


def test_memory_can_be_what_binds() -> None:
    # 16 one-core pods of 20,000 MB: cores would fit one node, memory takes six (3 per 65,536 MB node)
    assert first_fit_decreasing({(1, 20_000): 16}, NodeType(16, 65_536.0)) == 6
    assert first_fit_decreasing({(1, 0): 16}, NodeType(16, 65_536.0)) == 1


def test_a_pod_larger_than_a_node_names_the_option() -> None:
    with pytest.raises(FleetError, match="--node-cores"):
        first_fit_decreasing({(32, 0): 1}, NodeType(16, 65_536.0))
    with pytest.raises(FleetError, match="--node-memory"):
        first_fit_decreasing({(1, 70_000): 1}, NodeType(16, 65_536.0))
