"""The latency models and pod memory of a service, loaded once per distinct source.

A fleet of thousands of services usually has a handful of models: each `StageSource` is
read and fitted once (`ModelLibrary`), and a shard carries the fitted models of its
services once, keyed, not once per service.

A pod's memory is the profile's `peak_memory_mb` for the stage's model and device: the
largest measured at any batch up to the planned one (a replica at batch b runs every batch
up to b), over every core count.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from themis.common.files import read_text
from themis.planner.fleet.errors import FleetError
from themis.planner.fleet.spec import StageSource
from themis.planner.model.latency import LatencyModel
from themis.planner.model.serving import Stage
from themis.planner.optimise.pipeline import load_pipeline, stages_from_profiles


@dataclass(frozen=True)
class MemoryCurve:
    """Peak memory (MB) of one model on one device by batch: `mb[i]` covers batches up to `batches[i]`."""

    batches: tuple[int, ...]
    mb: tuple[float, ...]

    def at(self, batch: int) -> float:
        """The most memory measured at any batch up to `batch` (the smallest batch's if none)."""
        if not self.batches:
            return 0.0
        i = int(np.searchsorted(self.batches, batch, side="right")) - 1
        return self.mb[max(i, 0)]


@dataclass(frozen=True)
class ServiceModels:
    """A service's stages with their candidate latency models, and its pods' memory."""

    key: str
    stages: tuple[tuple[Stage, tuple[LatencyModel, ...]], ...]
    memory: tuple[dict[str, MemoryCurve], ...]
    """Per stage: device (as a plan names it) -> memory curve."""

    def pod_memory_mb(self, stage: int, device: str, batch: int) -> int:
        curve = self.memory[stage].get(device)
        return int(np.ceil(curve.at(batch))) if curve is not None else 0


class ModelLibrary:
    """Loads each `StageSource` once: fitted latency models, pod memory and a content hash."""

    def __init__(self) -> None:
        self._models: dict[StageSource, ServiceModels] = {}

    def models(self, source: StageSource) -> ServiceModels:
        if source not in self._models:
            self._models[source] = _load(source)
        return self._models[source]


def _load(source: StageSource) -> ServiceModels:
    if source.pipeline is not None:
        stages = load_pipeline(source.pipeline)
        files = _pipeline_profiles(Path(source.pipeline))
        hashed = [Path(source.pipeline), *(p for group in files for p in group)]
    else:
        stages = stages_from_profiles(list(source.profiles), source.model)
        files = [[Path(p) for p in source.profiles]]
        hashed = list(files[0])
    memory = []
    for (stage, models), paths in zip(stages, files):
        frame = _profiles(paths)
        memory.append({m.device: _memory_curve(frame, stage.model, m) for m in models})
    fitted = tuple((stage, tuple(models)) for stage, models in stages)
    return ServiceModels(_content_key(hashed, source), fitted, tuple(memory))


def _pipeline_profiles(path: Path) -> list[list[Path]]:
    """Per stage, the profile files a pipeline YAML names (it was validated by `load_pipeline`)."""
    data = yaml.safe_load(read_text(path))
    out = []
    for entry in data["stages"]:
        profiles = entry["profiles"]
        out.append([path.parent / p for p in ([profiles] if isinstance(profiles, str) else profiles)])
    return out


def _profiles(paths: Sequence[Path]) -> pd.DataFrame:
    from themis.profiler.table import read_profile

    return pd.concat([read_profile(p) for p in paths], ignore_index=True)


def _memory_curve(frame: pd.DataFrame, model: str, latency: LatencyModel) -> MemoryCurve:
    rows = frame[(frame["model"] == model) & (frame["device_kind"] == latency.device_kind) & (frame["status"] == "ok")]
    if latency.is_gpu:
        rows = rows[rows["device_name"] == latency.device_name]
    per_batch = rows.groupby("batch_size")["peak_memory_mb"].max().dropna().sort_index()
    if per_batch.empty:
        return MemoryCurve((), ())
    running = np.maximum.accumulate(per_batch.to_numpy(dtype=float))
    return MemoryCurve(tuple(int(b) for b in per_batch.index), tuple(float(v) for v in running))


def _content_key(paths: Sequence[Path], source: StageSource) -> str:
    """A hash of the files' bytes and the source's selection: what a resumed run must match."""
    digest = hashlib.sha256(repr((source.model, [Path(p).name for p in paths])).encode())
    for path in paths:
        try:
            digest.update(Path(path).read_bytes())
        except OSError as exc:
            raise FleetError(f"cannot read ({exc.strerror})", file=path) from None
    return digest.hexdigest()[:16]
