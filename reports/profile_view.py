"""What the report draws of a profile: measured curves, and the cells a plan uses that
were never measured, predicted by the latency model and flagged as extrapolated."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from themis.planner.model.latency import LatencyModel
from themis.planner.model.serving import Schedule


@dataclass(frozen=True)
class ProfileCurve:
    """Latency and throughput against batch size at one core count."""

    cores: int
    batch: np.ndarray
    p50_ms: np.ndarray
    p99_ms: np.ndarray
    items_per_core_s: np.ndarray
    extrapolated: np.ndarray
    """True where the cell was not measured: predicted by the fitted latency model."""

    @property
    def measured(self) -> bool:
        return not bool(self.extrapolated.all())


def planned_cells(schedule: Schedule | None, model: str, device: str) -> set[tuple[int, int]]:
    """(batch, cores) of every allocation the plan gives `model` on `device` (`cpu` or a GPU's name)."""
    if schedule is None:
        return set()
    cells = set()
    for step in schedule.steps:
        for stage, allocation in zip(schedule.stages, step.stages):
            if stage.model == model and allocation.device == device:
                cells.update((allocation.batch, g.cores) for g in allocation.groups if g.replicas)
    return cells


def profile_curves(cells: pd.DataFrame, model: str, device_kind: str, device_name: str,
                   planned: set[tuple[int, int]]) -> list[ProfileCurve]:
    """One curve per core count measured or planned (`cells`: the ok rows of `model` on one device)."""
    measured = cells.groupby(["cores", "batch_size"], sort=True)[["p50_ms", "p99_ms", "throughput_ips"]].median()
    measured_keys = {(int(b), int(c)) for c, b in measured.index}
    latency = LatencyModel(model, device_kind, device_name).fit(cells)
    all_batches = {b for b, _ in measured_keys}
    measured_cores = {c for _, c in measured_keys}
    curves = []
    for cores in sorted(measured_cores | {c for _, c in planned}):
        at_cores = {b for b, c in measured_keys if c == cores} if cores in measured_cores else all_batches
        batches = sorted(at_cores | {b for b, c in planned if c == cores})
        p50, p99, per_core, flags = [], [], [], []
        for batch in batches:
            if (batch, cores) in measured_keys:
                row = measured.loc[(cores, batch)]
                p50.append(row["p50_ms"])
                p99.append(row["p99_ms"])
                per_core.append(row["throughput_ips"] / cores)
                flags.append(False)
            else:
                median_ms = latency.predict_ms(batch, cores)
                p50.append(median_ms)
                p99.append(latency.percentile_ms(batch, cores, 99.0))
                per_core.append(batch * 1000.0 / median_ms / cores)
                flags.append(True)
        curves.append(ProfileCurve(cores, np.array(batches), np.array(p50), np.array(p99), np.array(per_core), np.array(flags)))
    return curves
