"""How many nodes the planned pods need: first-fit decreasing, as a cluster autoscaler packs.

Pods are packed onto identical nodes by **first-fit decreasing** (FFD; Johnson 1973): take
the pods largest first (by cores, ties by memory) and put each on the first node, in the
order the nodes were opened, where both its cores and its memory fit, opening a new node
when none has room. In one dimension FFD never uses more than 11/9 OPT + 6/9 nodes (Dósa
2007); it is also the heuristic Karpenter's bin-packing design names for provisioning nodes
for pending pods.

A fleet interval has thousands of pods of a handful of shapes, so the pods of one shape are
placed together: by FFD's rule, the pods of one shape fill the earliest nodes with room in
order (a node that cannot take one pod of a shape cannot take the next), which is the same
packing as placing them one at a time, in one pass over the nodes per shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from themis.planner.fleet.errors import FleetError

HEURISTIC = "first-fit decreasing (cores, then memory)"
PodShape = tuple[int, int]
"""(cores, memory MB) of one pod; memory 0 means none was given or measured."""


@dataclass(frozen=True)
class NodeType:
    """The node type pods are packed onto, and its price per node-hour."""

    cores: int
    memory_mb: float
    price_per_hour: float = 0.0

    def to_dict(self) -> dict[str, float | str]:
        return {"cores": self.cores, "memory_mb": self.memory_mb, "price_per_hour": self.price_per_hour, "packing": HEURISTIC}

    def check(self, shape: PodShape) -> None:
        cores, memory = shape
        if cores > self.cores:
            raise FleetError(f"a pod of {cores} cores does not fit a node of {self.cores}", option="--node-cores")
        if memory > self.memory_mb:
            raise FleetError(f"a pod of {memory:,} MB does not fit a node of {self.memory_mb:,.0f} MB", option="--node-memory")


def first_fit_decreasing(pods: Mapping[PodShape, int], node: NodeType) -> int:
    """Nodes that FFD opens for `pods` (shape -> count)."""
    free_cores = np.zeros(0, dtype=np.int64)
    free_memory = np.zeros(0, dtype=np.float64)
    for shape in sorted((s for s, n in pods.items() if n > 0), reverse=True):
        node.check(shape)
        cores, memory = shape
        count = int(pods[shape])
        room = _room(free_cores, free_memory, cores, memory)
        placed = np.minimum(room, np.maximum(count - (np.cumsum(room) - room), 0))
        free_cores = free_cores - placed * cores
        free_memory = free_memory - placed * memory
        left = count - int(placed.sum())
        if left:
            per_node = int(_room(np.array([node.cores]), np.array([node.memory_mb]), cores, memory)[0])
            full, last = divmod(left, per_node)
            fills = [per_node] * full + ([last] if last else [])
            filled = np.array(fills, dtype=np.int64)
            free_cores = np.r_[free_cores, node.cores - filled * cores]
            free_memory = np.r_[free_memory, node.memory_mb - filled * memory]
    return int(free_cores.size)


def _room(free_cores: np.ndarray, free_memory: np.ndarray, cores: int, memory: int) -> np.ndarray:
    """How many pods of the shape each node still takes."""
    by_cores = free_cores // cores
    if memory <= 0:
        return by_cores
    return np.minimum(by_cores, np.floor(free_memory / memory + 1e-9).astype(np.int64))
