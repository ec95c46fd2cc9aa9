"""A plain first-fit decreasing packer, one pod at a time: the test-only reference that the
fleet's node counts are checked against (deliberately the textbook loop, no shortcuts)."""

from __future__ import annotations


def first_fit_decreasing_one_by_one(pods: list[tuple[int, int]], node_cores: int, node_memory_mb: float) -> int:
    """Nodes opened by FFD for `pods` ((cores, memory MB) each): largest first (cores, then
    memory), each on the first open node where it fits, else on a new node."""
    nodes: list[list[float]] = []  # [free cores, free memory] per node, in opening order
    for cores, memory in sorted(pods, reverse=True):
        for node in nodes:
            if node[0] >= cores and node[1] >= memory:
                node[0] -= cores
                node[1] -= memory
                break
        else:
            nodes.append([node_cores - cores, node_memory_mb - memory])
    return len(nodes)
