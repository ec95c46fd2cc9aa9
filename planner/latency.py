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
`untrusted_`; `themis.planner.trust` decides whether a plan may stand on them.
A GPU row has `cores` = 1 (one GPU); its model has the single "cores" option 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from themis.planner.errors import ProfileDataError
from themis.planner.trust import fit_warnings
from themis.profiler.table import MEASURED_STATUSES

METHODS = ("amdahl", "interpolate")
PERCENTILE_COLUMNS = {50.0: "p50_ms", 90.0: "p90_ms", 95.0: "p95_ms", 99.0: "p99_ms"}


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


def amdahl_ms(coef: np.ndarray, batch: Any, cores: Any) -> np.ndarray:
    g, e, d, h = coef
    batch = np.asarray(batch, dtype=float)
    cores = np.asarray(cores, dtype=float)
    return (g * batch + e) / cores + d * batch + h


def _interp_ms(cells: dict[tuple[int, int], float], coef: np.ndarray, batch: int, cores: int) -> float:
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
        tails = grouped[list(PERCENTILE_COLUMNS.values())].median()
        self.tails_ = {
            (int(b), int(c)): {q: float(row[col]) for q, col in PERCENTILE_COLUMNS.items()}
            for (b, c), row in tails.iterrows()
        }
        self.tail_ratio_ = {
            q: float(np.median([t[q] / t[50.0] for t in self.tails_.values() if t[50.0] > 0])) for q in PERCENTILE_COLUMNS
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
            return _interp_ms(self.cells_, self.coef_, int(batch), int(cores))
        return max(float(amdahl_ms(self.coef_, batch, cores)), 1e-6)

    def percentile_ms(self, batch: int, cores: int, q: float) -> float:
        """The q-th percentile of one batch's service time (linear between measured p50..p99)."""
        key = (int(batch), int(cores))
        qs = sorted(PERCENTILE_COLUMNS)
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


def _ok_rows(frame: pd.DataFrame, model: str, device_kind: str, device_name: str) -> pd.DataFrame:
    rows = frame[(frame["model"] == model) & (frame["device_kind"] == device_kind) & frame["status"].isin(MEASURED_STATUSES)]
    if device_name:
        rows = rows[rows["device_name"] == device_name]
    rows = rows[np.isfinite(rows["p50_ms"].astype(float)) & (rows["p50_ms"].astype(float) > 0)]
    return rows


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
        errors["interpolate"].append(abs(_interp_ms(rest, coef, *key) - actual) / actual)
    return errors


@dataclass(frozen=True)
class FitReport:
    """How well the latency model predicts cells it did not see (`themis profile fit`)."""

    model: str
    device: str
    cells: int
    method: str
    coef: dict[str, float]
    loo_mape: dict[str, float]
    heldout_cores: int | None
    heldout_cores_mape: dict[str, float]
    per_cell: pd.DataFrame
    warnings: tuple[str, ...] = ()
    """Why the fit should not be trusted (`themis.planner.trust.fit_warnings`)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "device": self.device,
            "cells": self.cells,
            "method": self.method,
            "coef": self.coef,
            "loo_mape": self.loo_mape,
            "heldout_cores": self.heldout_cores,
            "heldout_cores_mape": self.heldout_cores_mape,
            "warnings": list(self.warnings),
        }

    def to_frame(self) -> pd.DataFrame:
        return self.per_cell.copy()


@dataclass(frozen=True)
class FitReports:
    """`fit_report` of every (model, device) in one profile table."""

    reports: tuple[FitReport, ...]

    def to_dict(self) -> dict[str, Any]:
        from themis.common import SCHEMA_VERSION

        return {"schema_version": SCHEMA_VERSION, "kind": "fit_report", "models": [r.to_dict() for r in self.reports]}

    def to_frame(self) -> pd.DataFrame:
        return pd.concat([r.to_frame() for r in self.reports], ignore_index=True)


def fit_report(profile_df: pd.DataFrame, model: str | None = None) -> FitReport | FitReports:
    """Backtest both predictors on `profile_df`: leave-one-out over cells, and the largest
    core count held out entirely (what extrapolating to bigger nodes costs).

    With `model` (or a table holding one model on one device) returns a `FitReport`;
    otherwise a `FitReports` over every (model, device).
    """
    keys = _model_keys(profile_df)
    if model is not None:
        keys = [k for k in keys if k[0] == model]
        if not keys:
            raise ProfileDataError(f"model {model!r} has no ok cells in this profile")
    reports = tuple(_fit_report_one(profile_df, *k) for k in keys)
    if not reports:
        raise ProfileDataError("profile has no ok cells")
    return reports[0] if len(reports) == 1 else FitReports(reports)


def _model_keys(frame: pd.DataFrame) -> list[tuple[str, str, str]]:
    ok = frame[frame["status"].isin(MEASURED_STATUSES)]
    return sorted({(str(m), str(k), str(n) if k != "cpu" else "") for m, k, n in zip(ok["model"], ok["device_kind"], ok["device_name"])})


def _fit_report_one(frame: pd.DataFrame, model: str, device_kind: str, device_name: str) -> FitReport:
    lm = LatencyModel(model, device_kind, device_name).fit(frame)
    errors = loo_errors(lm.cells_)
    b, c, ms = lm._arrays()
    rows = []
    for i, key in enumerate(lm.cells_):
        row = {"model": model, "device": lm.device, "batch_size": key[0], "cores": key[1], "measured_ms": ms[i]}
        if errors["amdahl"]:
            row["loo_amdahl_err"] = errors["amdahl"][i]
            row["loo_interpolate_err"] = errors["interpolate"][i]
        row["fit_amdahl_ms"] = float(amdahl_ms(lm.coef_, key[0], key[1]))
        rows.append(row)
    heldout, heldout_mape = heldout_cores_errors(lm.cells_)
    coef = dict(zip(("g", "e", "d", "h"), map(float, lm.coef_)))
    loo_mape = {m: float(np.mean(v)) if v else float("nan") for m, v in errors.items()}
    return FitReport(
        model=model,
        device=lm.device,
        cells=len(lm.cells_),
        method=lm.method_,
        coef=coef,
        loo_mape=loo_mape,
        heldout_cores=heldout,
        heldout_cores_mape=heldout_mape,
        per_cell=pd.DataFrame(rows),
        warnings=tuple(fit_warnings(coef, loo_mape.get(lm.method_), lm.method_, len(set(c)), len(set(b)))),
    )


def heldout_cores_errors(cells: dict[tuple[int, int], float]) -> tuple[int | None, dict[str, float]]:
    cores = sorted({c for _, c in cells})
    if len(cores) < 2:
        return None, {}
    top = cores[-1]
    train = {k: v for k, v in cells.items() if k[1] != top}
    test = {k: v for k, v in cells.items() if k[1] == top}
    b = np.array([k[0] for k in train], dtype=float)
    c = np.array([k[1] for k in train], dtype=float)
    coef = fit_amdahl(b, c, np.array(list(train.values())))
    amd = [abs(float(amdahl_ms(coef, *k)) - v) / v for k, v in test.items()]
    itp = [abs(_interp_ms(train, coef, *k) - v) / v for k, v in test.items()]
    return top, {"amdahl": float(np.mean(amd)), "interpolate": float(np.mean(itp))}


def latency_models_from_frames(frames: Iterable[pd.DataFrame]) -> dict[str, list[LatencyModel]]:
    """Every (model, device) in the tables, merged: model name -> candidate devices."""
    frame = pd.concat(list(frames), ignore_index=True)
    out: dict[str, list[LatencyModel]] = {}
    for model, kind, name in _model_keys(frame):
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
