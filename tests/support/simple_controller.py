"""An independent simple two-stage controller, the reference issue 10 measures `themis`
against: written from the serving model alone (a per-second count of arrivals and a
service-time function), importing none of the planner's sizing, queueing estimate or
surge logic.

- Horizontal, once per interval: enough one-core replicas at a fixed batch to carry the
  busiest second of the last `hold_s` seconds (capacity is released after the load has
  been lower that long, as the Kubernetes HPA's scale-down window does).
- Vertical, every second: when the last second's arrivals come within `grow_at` of what
  the ready replicas carry at their cores, resize them all in place to the fewest cores
  that carry `margin` times that rate; back to one core once the rate has stayed under
  what one core carries for `calm_s` seconds.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from themis.planner.model.cost import Prices
from themis.planner.model.serving import Group, Stage, StageAllocation
from themis.planner.simulation.observation import Observation


@dataclass
class SimpleTwoStageController:
    """One stage; `service_s(batch, cores)` is the batch time (s)."""

    stage: Stage
    service_s: Callable[[int, int], float]
    cores: Sequence[int]
    batch: int
    interval_s: float = 60.0
    hold_s: float = 300.0
    horizon_s: float = 0.0
    """No plan: it decides every second until the simulation ends."""
    grow_at: float = 0.9
    margin: float = 1.25
    calm_s: float = 10.0
    device: str = "cpu"
    policy: str = "simple"
    prices: Prices = field(default_factory=Prices)
    trace_start: str | None = None
    replicas: int = field(init=False, default=1)
    current_cores: int = field(init=False, default=1)
    _seconds: deque[int] = field(init=False, default_factory=deque)
    """Arrivals of each of the last `hold_s` seconds."""
    _calm_since_s: float | None = field(init=False, default=None)

    @property
    def stages(self) -> tuple[Stage, ...]:
        return (self.stage,)

    def resources(self) -> tuple[set[int], int]:
        return set(self.cores), self.batch

    def first_time_s(self) -> float:
        return 0.0

    def capacity_rps(self, replicas: int, cores: int) -> float:
        return replicas * self.batch / self.service_s(self.batch, cores)

    def decide(self, obs: Observation) -> tuple[list[StageAllocation | None], float]:
        now = obs.now_s
        if now > 0:
            self._seconds.append(obs.arrivals)
            while len(self._seconds) > self.hold_s:
                self._seconds.popleft()
        rate = float(obs.arrivals) if now > 0 else 0.0
        replicas, cores = self.replicas, self.current_cores
        if now > 0 and math.isclose(now % self.interval_s, 0.0, abs_tol=1e-9):
            peak = max(self._seconds, default=0)
            replicas = max(1, math.ceil(peak / self.capacity_rps(1, 1)))
        ready = max(obs.stages[0].ready_replicas, 1) if obs.stages else replicas
        if rate > self.grow_at * self.capacity_rps(ready, cores):
            cores = next((c for c in self.cores if self.capacity_rps(ready, c) >= self.margin * rate), max(self.cores))
            cores = max(cores, self.current_cores)
            self._calm_since_s = None
        elif cores > min(self.cores) and rate <= self.capacity_rps(ready, min(self.cores)):
            self._calm_since_s = now if self._calm_since_s is None else self._calm_since_s
            if now - self._calm_since_s >= self.calm_s:
                cores, self._calm_since_s = min(self.cores), None
        else:
            self._calm_since_s = None
        changed = now == 0 or (replicas, cores) != (self.replicas, self.current_cores)
        self.replicas, self.current_cores = replicas, cores
        target = StageAllocation((Group(replicas, cores),), self.batch, self.device) if changed else None
        return [target], now + 1.0
