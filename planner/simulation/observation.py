"""What a controller sees of the simulated system, and what the simulator asks of a controller.

A controller is anything that decides allocations while the simulation runs: a plan being
replayed, the themis surge controller, the Kubernetes HPA (`controllers`). The simulator
reads nothing of it beyond the `Controller` protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from themis.planner.model.cost import Prices
from themis.planner.model.serving import Group, Stage, StageAllocation


@dataclass(frozen=True)
class StageView:
    """What a controller sees of one stage: the requested replicas and what the system shows."""

    groups: tuple[Group, ...]
    batch: int
    ready_replicas: int
    queue_len: int
    utilisation: float
    """Busy core-seconds / ready core-seconds since the previous decision (NaN if none ready)."""
    ready_groups: tuple[Group, ...] = ()
    """The ready replicas by the cores they have once any pending resize lands (a resize
    lands `resize_s` after it was asked for: capacity already under way)."""
    booting: tuple[tuple[float, int], ...] = ()
    """(time it will serve, cores) of every replica still booting, soonest first."""
    oldest_wait_s: float = 0.0
    """How long the request at the head of the queue has been in the system (0: no queue)."""


@dataclass(frozen=True)
class Observation:
    """The state handed to a controller at a decision time."""

    now_s: float
    window_s: float
    arrivals: int
    """External arrivals in (now_s - window_s, now_s]."""
    stages: tuple[StageView, ...]

    @property
    def arrival_rate_rps(self) -> float:
        return self.arrivals / self.window_s if self.window_s > 0 else 0.0


class Controller(Protocol):
    """Decides allocations while the simulation runs. The simulator reads exactly this."""

    policy: str
    """The name results are reported under."""
    stages: tuple[Stage, ...]
    horizon_s: float
    """End of the controlled period (the plan's last step); 0 when it has none."""
    prices: Prices
    trace_start: str | None

    def resources(self) -> tuple[set[int], int]:
        """Every cores-per-replica value and the largest batch it may ask for (sizes the tables)."""
        ...

    def first_time_s(self) -> float:
        """Time of the first decision (the opening allocation, ready at once)."""
        ...

    def decide(self, obs: Observation) -> tuple[list[StageAllocation | None], float]:
        """Targets per stage (None = keep) and the time of the next decision (inf = none)."""
        ...
