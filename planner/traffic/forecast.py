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
- `holt_winters`: additive damped-trend exponential smoothing (`holt_winters`: our numba
  least-squares fit of statsmodels' model, its heuristic initial states, bounds, starting
  values and optimiser, at least as good a fit in a tenth of the time), re-fitted at
  `refit_points(n, growth=HW_REFIT_GROWTH)` and run forward with fixed parameters until the
  next re-fit. Each fit sees a bounded window of recent history only: the last
  `HW_WINDOW_SEASONS` seasons, at least `HW_MIN_WINDOW` and at most `HW_MAX_WINDOW`
  intervals; it is seasonal (additive) when two seasons plus 10 intervals fit in that
  window. Only the smoothing and damping parameters are optimised, from statsmodels'
  starting values without its brute-force grid, with BLAS held to one thread while fitting
  (the optimiser's steps are tiny: a second thread only adds hand-offs, 25x on a busy
  machine). Window and logarithmic schedule bound the cost to about 30 fits of at most
  `HW_MAX_WINDOW` points for 14 days at 1 minute or a day at 1 second (re-fitting the whole
  growing history took minutes), and to about 16 fits, 30 ms at load 6, for a day at 1 minute
  (statsmodels' own fit took 15 ms a fit: 60% of planning a fleet service).
  With the defaults a daily season is fitted at 1-minute intervals (two seasons of 1,440 fit
  in 4,320) but not at 1 second (a day is 86,400 intervals): there the model is level and
  damped trend only.
- `lstm`: a one-layer LSTM over the last `LSTM_LOOKBACK` peaks (torch, optional, imported
  only here), trained for `LSTM_EPOCHS` full-batch epochs at sparser re-fit points.
- `auto` (the planner's default): the forecast whose recent *planning loss* is lowest, held
  until another is better by a clear margin, and never below a floor from recent peaks.
  - The planning loss of an interval (`interval_planning_loss`) is `UNDER_WEIGHT` x the
    shortfall (actual peak above the forecast: capacity missing, the SLO at risk) plus the
    excess (capacity paid for and unused). `planning_loss` is its sum over a backtest divided
    by the sum of the actual peaks; `themis forecast --backtest` reports it per method.
  - Candidates (`auto_candidates`): each of `AUTO_CANDIDATES` recalibrated by the
    `PLANNING_QUANTILE`-quantile of its own errors over the last `AUTO_CALIBRATION_S` (the
    additive correction that minimises the planning loss of those errors), and the
    `PLANNING_QUANTILE`-quantile of the peaks themselves over each of `AUTO_QUANTILE_WINDOWS_S`
    (the constant forecast that minimises it). `PLANNING_QUANTILE` = UNDER_WEIGHT /
    (UNDER_WEIGHT + 1) = 0.8: the loss is a pinball loss, minimised by that quantile.
  - Selection (`select_by_loss`): auto starts with the first candidate (recalibrated `last`)
    and switches to another only when that one's planning loss over the last `AUTO_WINDOW_S`
    is lower by more than `AUTO_SWITCH_Z` standard errors of the paired differences. A plain
    "lowest recent loss" rule switched on noise and lost to the best single method on every
    bundled trace.
  - Floor (`recent_peak_floor`): every candidate is raised to at least the median of the
    peaks of the last `FLOOR_WINDOW_S` (once that much history exists). Half of the recent
    intervals peaked at least that high, so under a 4:1 loss raising a forecast to it pays
    whenever the next interval resembles them; it stops `auto` planning ~0 rps just after
    busy minutes because one candidate saw one quiet interval. A fraction of the recent *max*
    (the other obvious floor) costs 1.4-6x the planning loss on the LLM trace at 1 s, where
    the max of 600 per-second peaks is far above a typical second.
"""

from __future__ import annotations

import importlib.util
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
AUTO_CANDIDATES = ("last", "moving_max", "ewma", "seasonal_naive", "holt_winters")
"""`auto` recalibrates these (not `lstm`: optional and slow); it starts with the first."""

MOVING_MAX_WINDOW_S = 600.0
MOVING_MAX_HEADROOM = 1.1
EWMA_ALPHA = 0.3
EWMA_Z = 2.0
UNDER_WEIGHT = 4.0
"""The planning loss weighs a shortfall (SLO at risk) this many times an excess (cost)."""
PLANNING_QUANTILE = UNDER_WEIGHT / (UNDER_WEIGHT + 1.0)
AUTO_WINDOW_S = DAY_S
"""`auto` compares candidates on the planning loss of the intervals of the last day."""
AUTO_SWITCH_Z = 1.5
"""Standard errors by which a candidate must beat the current one for `auto` to switch
(measured on the bundled traces: 1.0 switches on noise at 1 s, 2.5 stays too long on 58
one-minute intervals)."""
ROUNDOFF = 1e-9
"""Relative round-off of the cumulative sums `select_by_loss` compares."""
AUTO_CALIBRATION_S = 3600.0
AUTO_QUANTILE_WINDOWS_S = (600.0, 3600.0)
FLOOR_WINDOW_S = 600.0
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
    from threadpoolctl import threadpool_limits

    from themis.planner.traffic import holt_winters

    period = round(season_s / interval_s)
    out = _last(y, interval_s, season_s)
    points = list(refit_points(len(y), growth=HW_REFIT_GROWTH)) + [len(y)]
    with threadpool_limits(1, user_api="blas"):
        for fit_at, until in zip(points, points[1:]):
            start, seasonal = _holt_winters_window(fit_at, period)
            history = y[start:fit_at]
            if np.ptp(history) == 0:  # a flat history has nothing to fit: keep the previous peak
                continue
            model = holt_winters.fit(history, period if seasonal else 0)
            # on from the window's start with the parameters held fixed: element fit_at - start
            # is the forecast of y[fit_at]
            out[fit_at:until] = model.forecasts(y[start:until])[fit_at - start :]
    return _clean(out, y)


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
    """The selected candidate's forecast at each t (module docstring, `auto`)."""
    candidates = auto_candidates(y, interval_s, season_s)
    window = max(1, round(AUTO_WINDOW_S / interval_s))
    chosen = select_by_loss(interval_planning_loss(y, candidates), AUTO_SWITCH_Z, window)
    return candidates[chosen, np.arange(len(y))]


def auto_candidates(y: np.ndarray, interval_s: float, season_s: float) -> np.ndarray:
    """`auto`'s candidate forecasts, one row each, every one raised to the recent-peak floor."""
    rows = []
    calibration = _intervals(AUTO_CALIBRATION_S, interval_s)
    for method in AUTO_CANDIDATES:
        forecast = _FORECASTERS[method](y, interval_s, season_s)
        correction = _rolling_quantile(y - forecast, calibration, PLANNING_QUANTILE)
        rows.append(np.maximum(forecast + np.nan_to_num(correction), 0.0))
    for window_s in AUTO_QUANTILE_WINDOWS_S:
        rows.append(_rolling_quantile(y, _intervals(window_s, interval_s), PLANNING_QUANTILE))
    candidates = np.maximum(np.stack(rows), recent_peak_floor(y, interval_s))
    candidates[:, :1] = np.nan  # no history, no forecast
    return candidates


def recent_peak_floor(y: np.ndarray, interval_s: float) -> np.ndarray:
    """Per t, the median of the peaks of the `FLOOR_WINDOW_S` before t; 0 until that much
    history exists (a median of a few intervals says little about the level)."""
    window = _intervals(FLOOR_WINDOW_S, interval_s)
    median = pd.Series(y).rolling(window, min_periods=window).median().shift(1).to_numpy()
    return np.nan_to_num(median)


def select_by_loss(losses: np.ndarray, z: float, window: int) -> np.ndarray:
    """Per t, the row of `losses` (candidates x intervals) to use at t, from losses before t.

    Row 0 leads first. The leader a gives way at t to the candidate j with the highest margin
    when (loss_a - loss_j) summed over the `window` intervals before t exceeds `z` x the root
    of (loss_a - loss_j)^2 summed over them (a paired test that j is better, not luckier), and
    by more than round-off (`ROUNDOFF` x the largest total loss; of candidates that tie within
    it, the first). Between switches nothing changes, so the test runs on blocks of intervals at once on
    cumulative sums (the block doubles while no switch comes): the cost grows with the
    switches, not with a Python loop per interval.
    """
    n, length = losses.shape
    cumulative = np.concatenate([np.zeros((n, 1)), np.cumsum(losses, axis=1)], axis=1)
    square_rows, pair = [np.zeros(length + 1)], np.zeros((n, n), dtype=np.int64)
    for a in range(n):
        for b in range(a + 1, n):
            difference = losses[a] - losses[b]
            square_rows.append(np.concatenate([[0.0], np.cumsum(difference * difference)]))
            pair[a, b] = pair[b, a] = len(square_rows) - 1
    squares = np.stack(square_rows)
    roundoff = ROUNDOFF * float(cumulative[:, -1].max(initial=0.0))
    chosen = np.empty(length, dtype=np.int64)
    leader, t, block = 0, 0, 64
    while t < length:
        ts = np.arange(t, min(length, t + block))
        lo = np.maximum(ts - window, 0)
        margin = (cumulative[leader, ts] - cumulative[leader, lo]) - (cumulative[:, ts] - cumulative[:, lo])
        rows = pair[leader][:, None]
        spread = squares[rows, ts] - squares[rows, lo]
        score = margin - z * np.sqrt(np.maximum(spread, 0.0))
        switches = np.flatnonzero((score > roundoff).any(axis=0))
        if switches.size == 0:
            chosen[ts] = leader
            t, block = int(ts[-1]) + 1, 2 * block
            continue
        k = int(switches[0])
        chosen[t : t + k] = leader
        leader = int(np.flatnonzero(score[:, k] >= score[:, k].max() - roundoff)[0])
        chosen[t + k] = leader
        t, block = t + k + 1, 64
    return chosen


def interval_planning_loss(actual_rps: np.ndarray, forecast_rps: np.ndarray) -> np.ndarray:
    """The planning loss of each interval: `UNDER_WEIGHT` x shortfall + excess (0 where there
    is no forecast). Broadcasts: candidates x intervals against the actual peaks."""
    error = np.nan_to_num(np.asarray(actual_rps, dtype=float) - np.asarray(forecast_rps, dtype=float))
    return UNDER_WEIGHT * np.maximum(error, 0.0) + np.maximum(-error, 0.0)


def planning_loss(actual_rps: np.ndarray, forecast_rps: np.ndarray) -> float:
    """The planning loss of rolling forecasts, per unit of actual peak: the interval losses
    of intervals 1..n-1 (interval 0 has no history) over the sum of their actual peaks
    (NaN when that is 0). Lower is better; scale-free, so traces compare."""
    actual = np.asarray(actual_rps, dtype=float)[1:]
    total = float(actual.sum())
    if total <= 0:
        return float("nan")
    return float(interval_planning_loss(actual, np.asarray(forecast_rps, dtype=float)[1:]).sum() / total)


def _rolling_quantile(values: np.ndarray, window: int, q: float) -> np.ndarray:
    """Per t, the q-quantile of `values[t - window:t]` (NaNs skipped; NaN when none)."""
    return pd.Series(values).rolling(window, min_periods=1).quantile(q).shift(1).to_numpy()


def _intervals(seconds: float, interval_s: float) -> int:
    return max(1, round(seconds / interval_s))


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
