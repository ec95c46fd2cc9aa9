"""How far to trust a latency model: its error on cells it did not see (`themis profile fit`).

Two backtests on the measured cells of one (model, device): leave-one-out over cells, and
the largest core count held out entirely, which is what planning for bigger nodes than the
one measured on costs. Both predictors of `latency` are scored, so the report says which
one the planner uses and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from themis.common import SCHEMA_VERSION
from themis.planner.errors import ProfileDataError
from themis.planner.model.latency import LatencyModel, amdahl_ms, fit_amdahl, interpolate_ms, loo_errors, model_keys
from themis.planner.model.trust import fit_warnings


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
    """Why the fit should not be trusted (`themis.planner.model.trust.fit_warnings`)."""

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
        return {"schema_version": SCHEMA_VERSION, "kind": "fit_report", "models": [r.to_dict() for r in self.reports]}

    def to_frame(self) -> pd.DataFrame:
        return pd.concat([r.to_frame() for r in self.reports], ignore_index=True)


def fit_report(profile_df: pd.DataFrame, model: str | None = None) -> FitReports:
    """Backtest both predictors on `profile_df` for every (model, device) it holds (only
    `model`'s, if given): leave-one-out over cells, and the largest core count held out
    entirely (what extrapolating to bigger nodes costs)."""
    keys = model_keys(profile_df)
    if model is not None:
        keys = [k for k in keys if k[0] == model]
        if not keys:
            raise ProfileDataError(f"model {model!r} has no ok cells in this profile")
    reports = tuple(_fit_report_one(profile_df, *k) for k in keys)
    if not reports:
        raise ProfileDataError("profile has no ok cells")
    return FitReports(reports)


def _fit_report_one(frame: pd.DataFrame, model: str, device_kind: str, device_name: str) -> FitReport:
    lm = LatencyModel(model, device_kind, device_name).fit(frame)
    errors = loo_errors(lm.cells_)
    measured_ms = list(lm.cells_.values())
    rows = []
    for i, key in enumerate(lm.cells_):
        row = {"model": model, "device": lm.device, "batch_size": key[0], "cores": key[1], "measured_ms": measured_ms[i]}
        if errors["amdahl"]:
            row["loo_amdahl_err"] = errors["amdahl"][i]
            row["loo_interpolate_err"] = errors["interpolate"][i]
        row["fit_amdahl_ms"] = float(amdahl_ms(lm.coef_, key[0], key[1]))
        rows.append(row)
    heldout, heldout_mape = heldout_cores_errors(lm.cells_)
    coef = dict(zip(("g", "e", "d", "h"), map(float, lm.coef_)))
    loo_mape = {m: float(np.mean(v)) if v else float("nan") for m, v in errors.items()}
    core_counts, batch_sizes = len({c for _, c in lm.cells_}), len({b for b, _ in lm.cells_})
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
        warnings=tuple(fit_warnings(coef, loo_mape.get(lm.method_), lm.method_, core_counts, batch_sizes)),
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
    itp = [abs(interpolate_ms(train, coef, *k) - v) / v for k, v in test.items()]
    return top, {"amdahl": float(np.mean(amd)), "interpolate": float(np.mean(itp))}
