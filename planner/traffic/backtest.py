"""Backtests of the rolling forecasts: every method scored on the same intervals.

The scores are what a capacity planner cares about: the planning loss that `auto` minimises
(`planning_loss`, shortfalls weighted `UNDER_WEIGHT` times excess, per unit of actual peak),
how often a forecast fell short of the real peak (`under_rate`) and how much capacity it paid
for beyond it (`over_provisioning_ratio`), besides the usual MAPE.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from themis.common import SCHEMA_VERSION
from themis.common.jsonvalues import finite_or_none
from themis.planner.choices import DAY_S
from themis.planner.traffic.forecast import (
    METHODS,
    forecast_peaks,
    lstm_available,
    planning_loss,
    trace_peaks,
    validated_peaks,
)
from themis.planner.traffic.trace import Trace


@dataclass(frozen=True)
class MethodScore:
    """How one method's rolling forecasts did against the actual peaks.

    `planning_loss`: `forecast.planning_loss`, the score `auto` minimises (lower is better).
    `mape_pct`: mean |forecast - actual| / actual over intervals with actual > 0, in %.
    `under_rate`: share of intervals whose actual peak exceeded the forecast.
    `over_provisioning_ratio`: sum of forecasts / sum of actual peaks (1 = exact on average,
    above 1 = capacity paid for beyond the peaks). Intervals scored: 1..n-1 (0 has no history).
    """

    method: str
    planning_loss: float
    mape_pct: float
    under_rate: float
    over_provisioning_ratio: float
    intervals: int

    def to_dict(self) -> dict[str, Any]:
        return {k: finite_or_none(v) for k, v in self.__dict__.items()}


def score_forecast(method: str, actual_rps: np.ndarray, forecast_rps: np.ndarray) -> MethodScore:
    """Score rolling forecasts against the actual peaks (see `MethodScore`)."""
    actual, forecast = np.asarray(actual_rps, float)[1:], np.asarray(forecast_rps, float)[1:]
    positive = actual > 0
    mape = float(np.mean(np.abs(forecast[positive] - actual[positive]) / actual[positive]) * 100) if positive.any() else float("nan")
    under = float(np.mean(actual > forecast + 1e-9 * np.maximum(actual, 1.0))) if actual.size else float("nan")
    over = float(forecast.sum() / actual.sum()) if actual.sum() > 0 else float("nan")
    loss = planning_loss(actual_rps, forecast_rps)
    return MethodScore(method, loss, mape, under, over, int(actual.size))


@dataclass(frozen=True)
class BacktestResult:
    """Per-method backtest of rolling peak forecasts on one trace (`themis forecast --backtest`)."""

    trace: str
    interval_s: float
    window_s: float
    season_s: float
    actual_rps: np.ndarray
    forecasts_rps: dict[str, np.ndarray]
    scores: list[MethodScore]
    skipped: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "forecast_backtest",
            "trace": self.trace,
            "interval_s": self.interval_s,
            "window_s": self.window_s,
            "season_s": self.season_s,
            "intervals": len(self.actual_rps),
            "methods": [s.to_dict() for s in self.scores],
            "skipped": self.skipped,
        }

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([s.to_dict() for s in self.scores])


def backtest(
    peaks_rps: np.ndarray,
    methods: Sequence[str] = METHODS,
    *,
    interval_s: float,
    season_s: float | None = None,
    trace: str = "",
    window_s: float = 1.0,
) -> BacktestResult:
    """Rolling forecasts of every method in `methods`, scored on the same intervals.

    `lstm` is skipped (and listed in `skipped`) when torch is missing and it was not the only
    method asked for.
    """
    y = validated_peaks(peaks_rps, interval_s)
    forecasts, scores, skipped = {}, [], {}
    for method in methods:
        if method == "lstm" and not lstm_available() and len(methods) > 1:
            skipped[method] = "torch is not installed"
            continue
        forecasts[method] = forecast_peaks(y, method, interval_s=interval_s, season_s=season_s)
        scores.append(score_forecast(method, y, forecasts[method]))
    season = season_s if season_s is not None else DAY_S
    return BacktestResult(trace, interval_s, window_s, season, y, forecasts, scores, skipped)


def backtest_trace(
    trace: Trace,
    methods: Sequence[str] = METHODS,
    *,
    interval_s: float,
    window_s: float = 1.0,
    season_s: float | None = None,
) -> BacktestResult:
    """`backtest` on `trace`'s per-interval peak rates."""
    peaks = trace_peaks(trace, interval_s, window_s)
    return backtest(peaks, methods, interval_s=interval_s, season_s=season_s, trace=trace.name, window_s=window_s)
