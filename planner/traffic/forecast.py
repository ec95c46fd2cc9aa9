"""Rolling peak-rate forecasts without look-ahead (SPEC, "Data flow"); scored in `backtest`.

Capacity must carry the *peak* rate inside an interval, so every forecaster here predicts
the series of per-interval peaks (`Trace.peak_rates`). `forecast_peaks(y, method)[t]` is the
forecast of `y[t]` made from `y[:t]` only; element 0 has no history and is NaN.

Methods (`METHODS`):

- `last`: the previous interval's peak.
- `moving_max`: the largest peak of the last `MOVING_MAX_WINDOW_S` seconds, times
  `MOVING_MAX_HEADROOM`.
- `ewma`: exponentially weighted mean plus `EWMA_Z` exponentially weighted standard
  deviations (the headroom grows with the recent variability).
- `seasonal_naive`: the peak one season ago (`season_s`, default a day; a week with
  `season_s=WEEK_S`); the previous peak until one season of history exists.
- `holt_winters`: statsmodels' additive damped-trend exponential smoothing, re-fitted at
  `refit_points(n, growth=HW_REFIT_GROWTH)` and run forward with fixed parameters until the
  next re-fit. Each fit sees a bounded window of recent history only: the last
  `HW_WINDOW_SEASONS` seasons, at least `HW_MIN_WINDOW` and at most `HW_MAX_WINDOW`
  intervals; it is seasonal (additive) when two seasons plus 10 intervals fit in that
  window. Initial states come from statsmodels' heuristic, so only the smoothing and damping
  parameters are optimised, from statsmodels' starting values without its brute-force grid
  (`use_brute=False`), with BLAS held to one thread while fitting (the optimiser's steps are
  tiny: more threads only add hand-offs, several-fold on a busy machine). Window,
  logarithmic schedule and cheaper fit bound the cost to about 30 fits of at most
  `HW_MAX_WINDOW` points for 14 days at 1 minute or a day at 1 second, where re-fitting the
  whole growing history took minutes (and `auto`, which runs every candidate, with it).
  With the defaults a daily season is fitted at 1-minute intervals (two seasons of 1,440 fit
  in 4,320) but not at 1 second (a day is 86,400 intervals): there the model is level and
  damped trend only.
- `lstm`: a one-layer LSTM over the last `LSTM_LOOKBACK` peaks (torch, optional, imported
  only here), trained for `LSTM_EPOCHS` full-batch epochs at sparser re-fit points.
- `auto`: at each t, the forecast of whichever candidate (`AUTO_CANDIDATES`) had the lowest
  asymmetric loss (under-prediction weighted `UNDER_WEIGHT` times over-prediction) over the
  last `AUTO_WINDOW_S` seconds of intervals already seen.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from themis.common import SCHEMA_VERSION
from themis.common.jsonvalues import finite_or_none
from themis.planner.choices import DAY_S, FORECAST_METHODS
from themis.planner.errors import ForecastError
from themis.planner.traffic.trace import Trace

METHODS = FORECAST_METHODS
AUTO_CANDIDATES = ("moving_max", "ewma", "last", "seasonal_naive", "holt_winters")
"""`auto` chooses among these (not `lstm`: optional and slow); the first is used before any
forecast has been scored."""

MOVING_MAX_WINDOW_S = 600.0
MOVING_MAX_HEADROOM = 1.1
EWMA_ALPHA = 0.3
EWMA_Z = 2.0
UNDER_WEIGHT = 4.0
AUTO_WINDOW_S = 3600.0
MIN_FIT_HISTORY = 10
"""Intervals of history before `holt_winters` fits a model (the previous peak until then; the
LSTM waits for 3 x `LSTM_LOOKBACK`)."""
REFIT_MIN_STEP = 24
HW_WINDOW_SEASONS = 3
"""`holt_winters` fits on the last this many seasons: two initialise the seasonal states
(statsmodels' heuristic), the third gives the smoothing parameters data beyond them."""
HW_MIN_WINDOW = 480
"""Intervals the `holt_winters` fit window holds at least (once the history is that long),
so a short season still leaves enough points to estimate the smoothing parameters."""
HW_MAX_WINDOW = 4320
"""Intervals the `holt_winters` fit window holds at most (three days at 1 minute): a fit this
size takes tens of milliseconds however long the trace, where fits on the whole history of
14 days at 1 minute took seconds each."""
HW_REFIT_GROWTH = 0.25
"""`holt_winters` re-fits every `REFIT_MIN_STEP` intervals, or every quarter of the history
once that is longer (28 fits for 20,160 intervals, 35 for 86,400)."""
LSTM_LOOKBACK = 12
LSTM_HIDDEN = 16
LSTM_EPOCHS = 60
LSTM_MAX_WINDOWS = 512
LSTM_REFIT_MIN_STEP = 120


def forecast_peaks(
    peaks_rps: np.ndarray, method: str = "auto", *, interval_s: float, season_s: float | None = None
) -> np.ndarray:
    """Rolling one-interval-ahead forecasts of `peaks_rps`: element t uses `peaks_rps[:t]` only."""
    y = validated_peaks(peaks_rps, interval_s)
    if method not in METHODS:
        raise ForecastError(f"unknown method {method!r}; use one of {', '.join(METHODS)}", option="--method")
    season = season_s if season_s is not None else DAY_S
    if season <= 0:
        raise ForecastError(f"season must be positive, got {season:g} s", option="--season")
    if method == "auto":
        return _auto(y, interval_s, season)
    return _FORECASTERS[method](y, interval_s, season)


def lstm_available() -> bool:
    """Whether torch can be imported (the `lstm` method needs it)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except ValueError:  # a torch module without a spec: treated as absent
        return False


def refit_points(n: int, *, first: int = MIN_FIT_HISTORY, min_step: int = REFIT_MIN_STEP, growth: float = 0.1) -> Iterator[int]:
    """History lengths (< n) at which a model-based forecaster re-fits: every `min_step`
    intervals, or every `growth` x the history once that is longer. Depends on t alone."""
    t = first
    while t < n:
        yield t
        t += max(min_step, int(t * growth))


# --------------------------------------------------------------------------- methods


def _last(y: np.ndarray, interval_s: float, season_s: float) -> np.ndarray:
    out = np.full(len(y), np.nan)
    out[1:] = y[:-1]
    return out


def _moving_max(y: np.ndarray, interval_s: float, season_s: float) -> np.ndarray:
    window = max(1, round(MOVING_MAX_WINDOW_S / interval_s))
    peaks = pd.Series(y).rolling(window, min_periods=1).max().shift(1).to_numpy()
    return peaks * MOVING_MAX_HEADROOM


def _ewma(y: np.ndarray, interval_s: float, season_s: float) -> np.ndarray:
    series = pd.Series(y)
    mean = series.ewm(alpha=EWMA_ALPHA, adjust=False).mean()
    std = series.ewm(alpha=EWMA_ALPHA, adjust=False).std(bias=True).fillna(0.0)
    return (mean + EWMA_Z * std).shift(1).to_numpy()


def _seasonal_naive(y: np.ndarray, interval_s: float, season_s: float) -> np.ndarray:
    lag = max(1, round(season_s / interval_s))
    out = _last(y, interval_s, season_s)
    if lag < len(y):
        out[lag:] = y[:-lag]
    return out


def _holt_winters_window(fit_at: int, period: int) -> tuple[int, bool]:
    """The first interval of the history `holt_winters` fits at history length `fit_at`,
    and whether that window is long enough for the seasonal component (two seasons + 10)."""
    size = min(max(HW_WINDOW_SEASONS * period, HW_MIN_WINDOW), HW_MAX_WINDOW)
    start = max(0, fit_at - size)
    return start, period >= 2 and fit_at - start >= 2 * period + 10


def _holt_winters(y: np.ndarray, interval_s: float, season_s: float) -> np.ndarray:
    from statsmodels.tsa.holtwinters import ExponentialSmoothing
    from threadpoolctl import threadpool_limits

    period = round(season_s / interval_s)
    out = _last(y, interval_s, season_s)
    points = list(refit_points(len(y), growth=HW_REFIT_GROWTH)) + [len(y)]
    with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"):
        warnings.simplefilter("ignore")
        for fit_at, until in zip(points, points[1:]):
            start, seasonal = _holt_winters_window(fit_at, period)
            shape: dict[str, Any] = {"trend": "add", "damped_trend": True, "seasonal": "add" if seasonal else None}
            if seasonal:
                shape["seasonal_periods"] = period
            history = y[start:fit_at]
            if np.ptp(history) == 0:  # a flat history has nothing to fit: keep the previous peak
                continue
            fitted = ExponentialSmoothing(history, initialization_method="heuristic", **shape).fit(use_brute=False)
            out[fit_at:until] = _holt_winters_run(fitted, y[fit_at:until], period if seasonal else 0)
    return _clean(out, y)


def _holt_winters_run(fitted: Any, ahead: np.ndarray, period: int) -> np.ndarray:
    """One-step forecasts of `ahead` (the peaks after the fitted history) with the fitted
    parameters held fixed, continuing from the fitted model's last state: statsmodels'
    additive damped-trend recursion, element i made from `ahead[:i]`."""
    p = fitted.params
    alpha, beta, phi = float(p["smoothing_level"]), float(p["smoothing_trend"]), float(p["damping_trend"])
    gamma = float(p["smoothing_seasonal"]) if period else 0.0
    level, trend = float(fitted.level[-1]), float(fitted.trend[-1])
    season = [float(v) for v in fitted.season[-period:]] if period else [0.0]
    out = np.empty(len(ahead))
    for i, actual in enumerate(ahead.tolist()):
        k = i % len(season)  # the season slot of this interval (one season ago)
        base = level + phi * trend
        out[i] = base + season[k]
        new_level = alpha * (actual - season[k]) + (1 - alpha) * base
        trend = beta * (new_level - level) + (1 - beta) * phi * trend
        season[k] = gamma * (actual - base) + (1 - gamma) * season[k]
        level = new_level
    return out


def _lstm(y: np.ndarray, interval_s: float, season_s: float) -> np.ndarray:
    torch = _import_torch()
    out = _last(y, interval_s, season_s)
    points = list(refit_points(len(y), first=3 * LSTM_LOOKBACK, min_step=LSTM_REFIT_MIN_STEP, growth=0.25)) + [len(y)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small trains several times faster on one thread
    try:
        for fit_at, until in zip(points, points[1:]):
            scale = float(y[:fit_at].max()) or 1.0
            net = _fit_lstm(torch, y[:fit_at] / scale)
            windows = np.stack([y[t - LSTM_LOOKBACK : t] / scale for t in range(fit_at, until)])
            with torch.no_grad():
                predicted = net(torch.as_tensor(windows, dtype=torch.float32)).numpy()
            out[fit_at:until] = predicted * scale
    finally:
        torch.set_num_threads(threads)
    return _clean(out, y)


def _fit_lstm(torch: Any, history: np.ndarray) -> Any:
    """Train a tiny LSTM on (last LSTM_LOOKBACK peaks -> next peak) windows of the history."""
    starts = np.arange(max(0, len(history) - LSTM_LOOKBACK - LSTM_MAX_WINDOWS), len(history) - LSTM_LOOKBACK)
    inputs = torch.as_tensor(np.stack([history[s : s + LSTM_LOOKBACK] for s in starts]), dtype=torch.float32)
    targets = torch.as_tensor(history[starts + LSTM_LOOKBACK], dtype=torch.float32)

    class PeakLSTM(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(1, LSTM_HIDDEN, batch_first=True)
            self.head = torch.nn.Linear(LSTM_HIDDEN, 1)

        def forward(self, window: Any) -> Any:
            hidden, _ = self.lstm(window.unsqueeze(-1))
            return self.head(hidden[:, -1]).squeeze(-1)

    with torch.random.fork_rng(devices=[]):  # seeded, without touching the caller's RNG
        torch.manual_seed(0)
        net = PeakLSTM()
        optimiser = torch.optim.Adam(net.parameters(), lr=0.02)
        for _ in range(LSTM_EPOCHS):
            optimiser.zero_grad()
            loss = torch.nn.functional.mse_loss(net(inputs), targets)
            loss.backward()
            optimiser.step()
    return net.eval()


def _import_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ForecastError(
            "the lstm forecaster needs torch; install it with: pip install 'themis-capacity[profile]'", option="--method"
        ) from None
    return torch


def _auto(y: np.ndarray, interval_s: float, season_s: float) -> np.ndarray:
    """Per t, the candidate with the lowest asymmetric loss over recent, already-scored intervals."""
    candidates = np.stack([_FORECASTERS[m](y, interval_s, season_s) for m in AUTO_CANDIDATES])
    error = np.nan_to_num(y - candidates)
    loss = UNDER_WEIGHT * np.maximum(error, 0.0) + np.maximum(-error, 0.0)
    window = max(1, round(AUTO_WINDOW_S / interval_s))
    cumulative = np.concatenate([np.zeros((len(candidates), 1)), np.cumsum(loss, axis=1)], axis=1)
    t = np.arange(len(y))
    recent = cumulative[:, t] - cumulative[:, np.maximum(t - window, 0)]  # loss on [t - window, t)
    best = np.argmin(recent, axis=0)  # all zero (nothing scored yet) -> the first candidate
    return candidates[best, t]


_FORECASTERS = {
    "last": _last,
    "moving_max": _moving_max,
    "ewma": _ewma,
    "seasonal_naive": _seasonal_naive,
    "holt_winters": _holt_winters,
    "lstm": _lstm,
}


def validated_peaks(peaks_rps: np.ndarray, interval_s: float) -> np.ndarray:
    y = np.asarray(peaks_rps, dtype=np.float64)
    if y.ndim != 1:
        raise ForecastError(f"the peak series must be one-dimensional, got shape {y.shape}")
    if not np.isfinite(y).all() or (y < 0).any():
        raise ForecastError("the peak series must be finite rates >= 0")
    if not interval_s > 0:
        raise ForecastError(f"interval must be positive, got {interval_s:g} s", option="--interval")
    return y


def _clean(forecast: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Model forecasts are rates: clip below at 0; a non-finite one falls back to the last peak."""
    bad = ~np.isfinite(forecast[1:])
    forecast[1:][bad] = y[:-1][bad]
    return np.maximum(forecast, 0.0, where=np.isfinite(forecast), out=forecast)


@dataclass(frozen=True)
class ForecastResult:
    """Rolling forecasts of one method next to the actual peaks (`themis forecast` without --backtest)."""

    trace: str
    method: str
    interval_s: float
    window_s: float
    actual_rps: np.ndarray
    forecast_rps: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "forecast",
            "trace": self.trace,
            "method": self.method,
            "interval_s": self.interval_s,
            "window_s": self.window_s,
            "intervals": [
                {"t_start_s": row.t_start_s, "peak_rps": row.peak_rps, "forecast_rps": finite_or_none(row.forecast_rps)}
                for row in self.to_frame().itertuples()
            ],
        }

    def to_frame(self) -> pd.DataFrame:
        t_start = np.arange(len(self.actual_rps)) * self.interval_s
        return pd.DataFrame({"t_start_s": t_start, "peak_rps": self.actual_rps, "forecast_rps": self.forecast_rps})


def forecast_trace(
    trace: Trace, method: str = "auto", *, interval_s: float, window_s: float = 1.0, season_s: float | None = None
) -> ForecastResult:
    """Rolling forecasts of `trace`'s per-interval peak rate (busiest `window_s` inside each interval)."""
    peaks = trace_peaks(trace, interval_s, window_s)
    forecast = forecast_peaks(peaks, method, interval_s=interval_s, season_s=season_s)
    return ForecastResult(trace.name, method, interval_s, window_s, peaks, forecast)


def trace_peaks(trace: Trace, interval_s: float, window_s: float) -> np.ndarray:
    try:
        return trace.peak_rates(interval_s, window_s)
    except ValueError as exc:
        raise ForecastError(str(exc), option="--interval") from None
