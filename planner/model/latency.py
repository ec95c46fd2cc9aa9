"""Latency models: service time of one batch on one device, fitted from a profile table.

Measured cells are used as measured (their median, `p50_ms`). Unmeasured (batch, cores)
cells come from one of two predictors, whichever backtests better on the measured cells
(leave-one-out mean absolute percentage error):

- `amdahl`: l(b, c) = (g*b + e)/c + d*b + h, non-negative least squares
  (`scipy.optimize.nnls`): a parallel part that shrinks with cores and a serial part;
- `interpolate`: piecewise-linear in batch at a measured core count (linear
  extrapolation beyond the ends), scaled by the Amdahl ratio l(b, c)/l(b, c0) from the
  nearest measured core count c0 when c itself was not measured.

Nothing assumes that latency falls with cores or grows smoothly with batch: CPU tables
measured on shared machines are not monotone, so the planner enumerates every cell.
Cells measured `unstable` or `contended` are fitted as measured and listed in
`untrusted_`; `themis.planner.model.trust` decides whether a plan may stand on them.
A GPU row has `cores` = 1 (one GPU); its model has the single "cores" option 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from themis.planner.errors import ProfileDataError
from themis.profiler.table import MEASURED_STATUSES

METHODS = ("amdahl", "interpolate")
DISTRIBUTION_COLUMNS = {0.0: "min_ms", 50.0: "p50_ms", 90.0: "p90_ms", 95.0: "p95_ms", 99.0: "p99_ms", 100.0: "max_ms"}
"""The measured distribution of one cell: percentile -> profile column (min and max are 0 and 100)."""


def _amdahl_features(batch: np.ndarray, cores: np.ndarray) -> np.ndarray:
    batch = np.asarray(batch, dtype=float)
    cores = np.asarray(cores, dtype=float)
    return np.column_stack([batch / cores, 1.0 / cores, batch, np.ones_like(batch)])


def fit_amdahl(batch: np.ndarray, cores: np.ndarray, latency_ms: np.ndarray) -> np.ndarray:
    """Non-negative (g, e, d, h) of l(b, c) = (g*b + e)/c + d*b + h, fitted in relative terms.

    Rows are weighted by 1/latency so that small cells count as much as big ones (the
    planner cares about relative error across the whole table).
    """
    from scipy.optimize import (
        nnls,  # imported here: scipy.optimize is slow to import (`--help`)
    )

    x = _amdahl_features(batch, cores)
    w = 1.0 / np.asarray(latency_ms, dtype=float)
    coef, _ = nnls(x * w[:, None], np.asarray(latency_ms, dtype=float) * w)
    return coef


def amdahl_ms(coef: np.ndarray, batch: ArrayLike, cores: ArrayLike) -> np.ndarray:
    g, e, d, h = coef
    batch = np.asarray(batch, dtype=float)
    cores = np.asarray(cores, dtype=float)
    return (g * batch + e) / cores + d * batch + h


def interpolate_ms(cells: dict[tuple[int, int], float], coef: np.ndarray, batch: int, cores: int) -> float:
    """Piecewise-linear in batch at a measured core count, Amdahl-scaled across cores."""
    measured_cores = sorted({c for _, c in cells})
    c0 = min(measured_cores, key=lambda c: (abs(np.log(c) - np.log(cores)), -c))
    points = sorted((b, ms) for (b, c), ms in cells.items() if c == c0)
    bs = np.array([p[0] for p in points], dtype=float)
    ms = np.array([p[1] for p in points], dtype=float)
    if len(bs) == 1:
        value = ms[0] * float(amdahl_ms(coef, batch, c0)) / max(float(amdahl_ms(coef, bs[0], c0)), 1e-12)
    elif batch < bs[0]:
        value = ms[0] + (batch - bs[0]) * (ms[1] - ms[0]) / (bs[1] - bs[0])
    elif batch > bs[-1]:
        value = ms[-1] + (batch - bs[-1]) * (ms[-1] - ms[-2]) / (bs[-1] - bs[-2])
    else:
        value = float(np.interp(batch, bs, ms))
    if c0 != cores:
        value *= float(amdahl_ms(coef, batch, cores)) / max(float(amdahl_ms(coef, batch, c0)), 1e-12)
    return max(value, 1e-6)


@dataclass
class LatencyModel:
    """Service time l(batch, cores) of one model on one device (sklearn-style `fit`)."""

    model: str
    device_kind: str = "cpu"
    device_name: str = ""
    cells_: dict[tuple[int, int], float] = field(default_factory=dict, repr=False)
    """(batch, cores) -> measured median ms."""
    tails_: dict[tuple[int, int], dict[float, float]] = field(default_factory=dict, repr=False)
    coef_: np.ndarray | None = field(default=None, repr=False)
    method_: str = "amdahl"
    tail_ratio_: dict[float, float] = field(default_factory=dict, repr=False)
    """Median over measured cells of pXX/p50, used for unmeasured cells' percentiles."""
    untrusted_: dict[tuple[int, int], str] = field(default_factory=dict, repr=False)
    """(batch, cores) -> `unstable` or `contended`, for measured cells that are not `ok`."""

    @property
    def device(self) -> str:
        """What a schedule's `device` field says: `cpu`, or the GPU's name."""
        return "cpu" if self.device_kind == "cpu" else self.device_name

    @property
    def is_gpu(self) -> bool:
        return self.device_kind != "cpu"

    def fit(self, profile_df: pd.DataFrame) -> LatencyModel:
        rows = _ok_rows(profile_df, self.model, self.device_kind, self.device_name)
        if rows.empty:
            raise ProfileDataError(f"no ok cells for model {self.model!r} on {self.device_kind} {self.device_name!r}")
        grouped = rows.groupby(["batch_size", "cores"], sort=True)
        medians = grouped["p50_ms"].median()
        self.cells_ = {(int(b), int(c)): float(v) for (b, c), v in medians.items()}
        self.untrusted_ = {(int(r.batch_size), int(r.cores)): str(r.status) for r in rows.itertuples() if r.status != "ok"}
        tails = grouped[list(DISTRIBUTION_COLUMNS.values())].median()
        self.tails_ = {
            (int(b), int(c)): {q: float(row[col]) for q, col in DISTRIBUTION_COLUMNS.items()}
            for (b, c), row in tails.iterrows()
        }
        self.tail_ratio_ = {
            q: float(np.median([t[q] / t[50.0] for t in self.tails_.values() if t[50.0] > 0])) for q in DISTRIBUTION_COLUMNS
        }
        b, c, ms = self._arrays()
        self.coef_ = fit_amdahl(b, c, ms)
        errors = loo_errors(self.cells_)
        self.method_ = min(METHODS, key=lambda m: np.mean(errors[m]) if len(errors[m]) else np.inf)
        return self

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        keys = list(self.cells_)
        return (
            np.array([k[0] for k in keys], dtype=float),
            np.array([k[1] for k in keys], dtype=float),
            np.array([self.cells_[k] for k in keys], dtype=float),
        )

    def is_measured(self, batch: int, cores: int) -> bool:
        return (int(batch), int(cores)) in self.cells_

    def predict_ms(self, batch: int, cores: int) -> float:
        """Median service time of one batch: measured if the cell was, else predicted."""
        if self.coef_ is None:
            raise RuntimeError("LatencyModel.fit() was not called")
        key = (int(batch), int(cores))
        if key in self.cells_:
            return self.cells_[key]
        if self.method_ == "interpolate":
            return interpolate_ms(self.cells_, self.coef_, int(batch), int(cores))
        return max(float(amdahl_ms(self.coef_, batch, cores)), 1e-6)

    def percentile_ms(self, batch: int, cores: int, q: float) -> float:
        """The q-th percentile (0..100) of one batch's service time, linear between the measured
        min, p50, p90, p95, p99 and max (unmeasured cells: the median cell's shape, scaled)."""
        key = (int(batch), int(cores))
        qs = sorted(DISTRIBUTION_COLUMNS)
        if key in self.tails_:
            values = [self.tails_[key][p] for p in qs]
        else:
            base = self.predict_ms(batch, cores)
            values = [base * self.tail_ratio_[p] for p in qs]
        return float(np.interp(q, qs, values))

    def service_table_ms(self, max_batch: int, cores_options: Sequence[int]) -> np.ndarray:
        """Median ms for every batch 1..max_batch (row 0 unused: NaN) and core option."""
        table = np.full((max_batch + 1, len(cores_options)), np.nan)
        for j, c in enumerate(cores_options):
            for b in range(1, max_batch + 1):
                table[b, j] = self.predict_ms(b, c)
        return table


def loo_errors(cells: dict[tuple[int, int], float]) -> dict[str, list[float]]:
    """Leave-one-out absolute percentage error of both predictors on every measured cell."""
    errors: dict[str, list[float]] = {m: [] for m in METHODS}
    if len(cells) < 3:
        return errors
    for key, actual in cells.items():
        rest = {k: v for k, v in cells.items() if k != key}
        b = np.array([k[0] for k in rest], dtype=float)
        c = np.array([k[1] for k in rest], dtype=float)
        coef = fit_amdahl(b, c, np.array(list(rest.values())))
        errors["amdahl"].append(abs(float(amdahl_ms(coef, *key)) - actual) / actual)
        errors["interpolate"].append(abs(interpolate_ms(rest, coef, *key) - actual) / actual)
    return errors


def _ok_rows(frame: pd.DataFrame, model: str, device_kind: str, device_name: str) -> pd.DataFrame:
    rows = frame[(frame["model"] == model) & (frame["device_kind"] == device_kind) & frame["status"].isin(MEASURED_STATUSES)]
    if device_name:
        rows = rows[rows["device_name"] == device_name]
    rows = rows[np.isfinite(rows["p50_ms"].astype(float)) & (rows["p50_ms"].astype(float) > 0)]
    return rows


def model_keys(frame: pd.DataFrame) -> list[tuple[str, str, str]]:
    ok = frame[frame["status"].isin(MEASURED_STATUSES)]
    return sorted({(str(m), str(k), str(n) if k != "cpu" else "") for m, k, n in zip(ok["model"], ok["device_kind"], ok["device_name"])})


def latency_models_from_frames(frames: Iterable[pd.DataFrame]) -> dict[str, list[LatencyModel]]:
    """Every (model, device) in the tables, merged: model name -> candidate devices."""
    frame = pd.concat(list(frames), ignore_index=True)
    out: dict[str, list[LatencyModel]] = {}
    for model, kind, name in model_keys(frame):
        out.setdefault(model, []).append(LatencyModel(model, kind, name).fit(frame))
    return out


def load_latency_candidates(paths: Iterable[str | Path]) -> dict[str, list[LatencyModel]]:
    """Model name -> one fitted `LatencyModel` per device found across `paths`."""
    from themis.profiler.table import read_profile

    frames = [read_profile(p) for p in paths]
    if not frames:
        raise ProfileDataError("no profile given")
    return latency_models_from_frames(frames)


def load_latency_models(paths: Iterable[str | Path]) -> dict[str, LatencyModel]:
    """Model name -> fitted `LatencyModel` (the CPU one when a model was profiled on several
    devices; use `load_latency_candidates` for all of them)."""
    candidates = load_latency_candidates(paths)
    return {m: next((x for x in ms if not x.is_gpu), ms[0]) for m, ms in candidates.items()}
