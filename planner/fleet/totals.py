"""Fleet totals from the per-service table: per interval (pods, cores, cost, nodes) and per service.

The shard files are read one at a time, a few columns each, and folded into per-interval
sums and a histogram of pod shapes per interval (a few shapes, however many services), so
the memory this takes does not grow with the fleet. Nodes per interval come from packing
that interval's CPU pods onto the node type (`packing.first_fit_decreasing`). GPU pods are
counted (`gpus`) but not packed: a CPU node type does not hold them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from themis.planner.fleet.packing import NodeType, PodShape, first_fit_decreasing

TOTAL_COLUMNS = ("interval", "t_start_s", "pods", "cores", "gpus", "cost", "nodes", "node_cost", "services_at_risk")
SERVICE_COLUMNS = ("service", "intervals", "core_hours", "cost", "peak_replicas", "peak_cores", "est_violation_intervals", "feasible")


class TotalsBuilder:
    """Folds shard tables into per-interval totals and per-service summaries."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.sums: dict[str, np.ndarray] = {k: np.zeros(0) for k in ("pods", "cores", "gpus", "cost", "services_at_risk")}
        self.shapes: dict[tuple[int, PodShape], int] = {}
        self.services: list[pd.DataFrame] = []

    def add(self, frame: pd.DataFrame) -> None:
        """One shard's rows (`shard.PLAN_SCHEMA` columns)."""
        if frame.empty:
            return
        n = int(frame["interval"].max()) + 1
        self._grow(n)
        cpu = frame["device"] == "cpu"
        idx = frame["interval"].to_numpy()
        np.add.at(self.sums["pods"], idx, frame["replicas"].to_numpy())
        np.add.at(self.sums["cores"], idx[cpu.to_numpy()], frame.loc[cpu, "cores"].to_numpy())
        np.add.at(self.sums["gpus"], idx[~cpu.to_numpy()], frame.loc[~cpu, "replicas"].to_numpy())
        np.add.at(self.sums["cost"], idx, frame["cost"].to_numpy())
        at_risk = frame.loc[frame["est_violation"], ["service", "interval"]].drop_duplicates()
        np.add.at(self.sums["services_at_risk"], at_risk["interval"].to_numpy(), 1)
        shapes = frame[cpu].groupby(["interval", "cores_per_replica", "memory_mb"], sort=False)["replicas"].sum()
        for (interval, cores, memory), pods in shapes.items():
            key = (int(interval), (int(cores), int(memory)))
            self.shapes[key] = self.shapes.get(key, 0) + int(pods)
        self.services.append(service_summaries(frame, self.interval_s))

    def _grow(self, n: int) -> None:
        for key, values in self.sums.items():
            if values.size < n:
                self.sums[key] = np.r_[values, np.zeros(n - values.size)]

    def totals(self, node: NodeType) -> pd.DataFrame:
        """Per interval: pods, cores, GPUs, cost, nodes (FFD), node cost, services at risk."""
        n = self.sums["pods"].size
        per_interval: list[dict[PodShape, int]] = [{} for _ in range(n)]
        for (interval, shape), pods in self.shapes.items():
            per_interval[interval][shape] = pods
        nodes = np.array([first_fit_decreasing(pods, node) for pods in per_interval], dtype=np.int64)
        return pd.DataFrame(
            {
                "interval": np.arange(n, dtype=np.int64),
                "t_start_s": np.arange(n) * self.interval_s,
                "pods": self.sums["pods"].astype(np.int64),
                "cores": self.sums["cores"].astype(np.int64),
                "gpus": self.sums["gpus"].astype(np.int64),
                "cost": self.sums["cost"],
                "nodes": nodes,
                "node_cost": nodes * node.price_per_hour * self.interval_s / 3600.0,
                "services_at_risk": self.sums["services_at_risk"].astype(np.int64),
            },
            columns=list(TOTAL_COLUMNS),
        )

    def service_table(self) -> pd.DataFrame:
        if not self.services:
            return pd.DataFrame(columns=list(SERVICE_COLUMNS))
        return pd.concat(self.services, ignore_index=True)


def service_summaries(frame: pd.DataFrame, interval_s: float) -> pd.DataFrame:
    """Per service of a shard: intervals, core-hours, cost, peaks, estimated violation intervals."""
    per_interval = frame.groupby(["service", "interval"], sort=False).agg(
        replicas=("replicas", "sum"), cores=("cores", "sum"), cost=("cost", "sum"), violated=("est_violation", "max"),
        feasible=("feasible", "min"),
    )
    grouped = per_interval.groupby(level="service", sort=False)
    out = pd.DataFrame(
        {
            "intervals": grouped.size(),
            "core_hours": grouped["cores"].sum() * interval_s / 3600.0,
            "cost": grouped["cost"].sum(),
            "peak_replicas": grouped["replicas"].max(),
            "peak_cores": grouped["cores"].max(),
            "est_violation_intervals": grouped["violated"].sum().astype(np.int64),
            "feasible": grouped["feasible"].min().astype(bool),
        }
    )
    return out.reset_index()[list(SERVICE_COLUMNS)]


READ_COLUMNS = ["service", "interval", "device", "replicas", "cores_per_replica", "cores", "memory_mb", "cost", "est_violation", "feasible"]


def fold_shards(paths: Iterable[Path], interval_s: float) -> TotalsBuilder:
    """Every shard file folded in, one at a time."""
    builder = TotalsBuilder(interval_s)
    for path in paths:
        builder.add(pq.read_table(path, columns=READ_COLUMNS).to_pandas())
    return builder
