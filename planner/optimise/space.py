"""The candidate space of one stage: every homogeneous allocation it may run.

A candidate is (replica size, batch) x replicas 1..R, where a replica size is a device and
its cores (1 for a GPU) with its price. Latency grids over (candidate, replicas) are
computed per load level on demand and cached; the solver reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from themis.planner.model.config import PlanConfig
from themis.planner.model.latency import LatencyModel
from themis.planner.model.queueing import estimate_latency_ms, latency_grid_ms
from themis.planner.model.serving import Group, Stage, StageAllocation


@dataclass(frozen=True)
class SizeOption:
    """One replica size of a stage: a device and its cores (1 for a GPU), with its price."""

    device: str
    cores: int
    cost_per_hour: float
    service_ms: np.ndarray
    """service_ms[k]: median ms of a batch of k (index 0 unused)."""


class StageSpace:
    """Every homogeneous allocation of one stage: option x batch x replicas (1..R).

    Candidate k = (option, batch) is flattened; arrays are (K,) or (K, R). Latency grids
    per load level are computed on demand and cached.
    """

    def __init__(self, stage: Stage, models: Sequence[LatencyModel], config: PlanConfig) -> None:
        self.stage = stage
        self.batches = tuple(sorted(set(int(b) for b in config.batch_sizes)))
        self.max_replicas = int(config.max_replicas)
        self.quantile = config.percentile / 100.0
        max_batch = self.batches[-1]
        options: list[SizeOption] = []
        for model in models:
            cores_options = (1,) if model.is_gpu else config.allowed_cores()
            table = model.service_table_ms(max_batch, cores_options)
            for j, cores in enumerate(cores_options):
                price = config.prices.objective_per_replica_hour(model.device, int(cores))
                if price is not None:
                    options.append(SizeOption(model.device, int(cores), price, table[:, j]))
        self.options = tuple(options)
        self.option_of = {(o.device, o.cores): i for i, o in enumerate(options)}
        pairs = [(i, b) for i in range(len(options)) for b in self.batches]
        self.k_option = np.array([i for i, _ in pairs], dtype=np.int64)
        self.k_batch = np.array([b for _, b in pairs], dtype=float)
        self.k_service_ms = np.array([options[i].service_ms[: max_batch + 1] for i, _ in pairs]).reshape(len(pairs), max_batch + 1)
        """Row k: the batch times of candidate k's replica size (its batch caps them)."""
        self.k_full_ms = np.array([options[i].service_ms[b] for i, b in pairs])
        self.k_cores = np.array([options[i].cores for i in self.k_option], dtype=np.int64)
        replicas = np.arange(1, self.max_replicas + 1)
        self.cost_per_hour = np.array([options[i].cost_per_hour for i in self.k_option])[:, None] * replicas[None, :]
        self.capacity_rps = replicas[None, :] * (self.k_batch * 1000.0 / self.k_full_ms)[:, None]
        self._grids: dict[int, np.ndarray] = {}

    @property
    def n_candidates(self) -> int:
        return len(self.k_option)

    def grids(self, levels: Sequence[int], loads_rps: np.ndarray) -> list[np.ndarray]:
        """Latency grids (K, R) for load levels, computing the missing ones in one pass."""
        missing = [i for i, lv in enumerate(levels) if lv not in self._grids]
        for start in range(0, len(missing), 64):
            chunk = missing[start : start + 64]
            grid = latency_grid_ms(loads_rps[chunk], self.k_service_ms, self.k_batch.astype(np.int64), self.max_replicas, self.quantile)
            for j, i in enumerate(chunk):
                self._grids[levels[i]] = grid[j]
        return [self._grids[lv] for lv in levels]

    def allocation(self, k: int, replicas: int, load_rps: float) -> StageAllocation:
        """The homogeneous allocation of candidate k with `replicas`, estimated at load_rps."""
        option = self.options[self.k_option[k]]
        groups = (Group(int(replicas), option.cores),)
        return self.describe(groups, int(self.k_batch[k]), option.device, load_rps)

    def describe(self, groups: tuple[Group, ...], batch: int, device: str, load_rps: float) -> StageAllocation:
        """A StageAllocation with its estimate (latency, capacity) once fully in effect."""
        latency, capacity = self.estimate(groups, batch, device, load_rps)
        return StageAllocation(groups=groups, batch=batch, device=device, est_latency_ms=latency, capacity_rps=capacity)

    def estimate(self, groups: Sequence[Group], batch: int, device: str, load_rps: float) -> tuple[float, float]:
        """(q-latency ms, capacity rps) of any allocation of this stage, heterogeneous or not."""
        tables = [(g.replicas, self.options[self.option_of[(device, g.cores)]].service_ms) for g in groups if g.replicas > 0]
        capacity = sum(r * batch * 1000.0 / s[batch] for r, s in tables)
        return estimate_latency_ms(tables, batch, load_rps, self.quantile), float(capacity)

    def slowest_batch_ms(self, device: str, cores: int, batch: int) -> float:
        """The slowest batch (of 1..batch) one replica of this size runs."""
        return float(np.nanmax(self.options[self.option_of[(device, cores)]].service_ms[1 : batch + 1]))
