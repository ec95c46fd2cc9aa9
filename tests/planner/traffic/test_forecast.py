"""Forecasters: one conformance suite over every method, the no-look-ahead property, independent
references for each method, and the backtest scores."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from themis.planner.errors import ForecastError
from themis.planner.traffic import forecast as fc
from themis.planner.traffic.backtest import backtest, backtest_trace, score_forecast
from themis.data import bundled_trace
from themis.planner.traffic.forecast import METHODS, forecast_peaks, planning_loss
from themis.planner.traffic.loading import load_trace
from themis.planner.traffic.trace import Trace

INTERVAL_S = 10.0
SEASON_S = 8 * INTERVAL_S  # short season so the seasonal paths run on short series


def _series(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return np.maximum(0.0, 20 + 8 * np.sin(2 * np.pi * t / 8) + 0.1 * t + rng.normal(0, 2, n))


def _methods_fast_first() -> list:
    return [pytest.param(m, marks=pytest.mark.slow) if m == "lstm" else m for m in METHODS]


# --------------------------------------------------------------------------- conformance


@pytest.mark.parametrize("method", _methods_fast_first())
def test_conformance(method) -> None:
    y = _series(60)
    forecast = forecast_peaks(y, method, interval_s=INTERVAL_S, season_s=SEASON_S)
    assert forecast.shape == y.shape
    assert np.isnan(forecast[0])  # no history, no forecast
    assert np.all(np.isfinite(forecast[1:])) and np.all(forecast[1:] >= 0)
    np.testing.assert_array_equal(forecast, forecast_peaks(y, method, interval_s=INTERVAL_S, season_s=SEASON_S))
    assert forecast_peaks(y[:1], method, interval_s=INTERVAL_S).shape == (1,)
    assert forecast_peaks(y[:0], method, interval_s=INTERVAL_S).shape == (0,)
    if method != "lstm":  # a flat history is forecast flat (or above it, with headroom)
        flat = forecast_peaks(np.full(30, 5.0), method, interval_s=INTERVAL_S, season_s=SEASON_S)
        assert np.all(flat[1:] >= 5.0 - 1e-9) and np.all(flat[1:] <= 5.0 * fc.MOVING_MAX_HEADROOM + 1e-9)


@pytest.mark.parametrize("method", _methods_fast_first())
def test_no_look_ahead(method) -> None:
    """Changing the trace after time T changes no forecast for an interval starting by T."""
    examples = 8 if method in ("lstm", "holt_winters", "auto") else 30

    @settings(max_examples=examples, deadline=None)
    @given(
        seconds=st.integers(40 * 10, 60 * 10),
        cut_s=st.integers(1, 400 - 1),
        seed=st.integers(0, 2**32 - 1),
        rate=st.floats(0.5, 40),
        new_rate=st.floats(0, 80),
    )
    def check(seconds, cut_s, seed, rate, new_rate) -> None:
        rng = np.random.default_rng(seed)
        counts = rng.poisson(rate, seconds)
        changed = counts.copy()
        changed[cut_s:] = rng.poisson(new_rate, seconds - cut_s)
        before = Trace("a", "rate_series", None, 1.0, counts).peak_rates(INTERVAL_S)
        after = Trace("b", "rate_series", None, 1.0, changed).peak_rates(INTERVAL_S)
        f_before = forecast_peaks(before, method, interval_s=INTERVAL_S, season_s=SEASON_S)
        f_after = forecast_peaks(after, method, interval_s=INTERVAL_S, season_s=SEASON_S)
        unaffected = int(cut_s // INTERVAL_S) + 1  # intervals k with k * INTERVAL_S <= cut_s
        np.testing.assert_array_equal(f_before[:unaffected], f_after[:unaffected])

    check()


def test_unknown_method_and_bad_series() -> None:
    with pytest.raises(ForecastError, match="--method"):
        forecast_peaks(np.ones(5), "prophet", interval_s=60)
    with pytest.raises(ForecastError):
        forecast_peaks(np.array([1.0, -2.0]), "last", interval_s=60)
    with pytest.raises(ForecastError, match="--interval"):
        forecast_peaks(np.ones(3), "last", interval_s=0)


def test_lstm_without_torch_is_a_clear_error(monkeypatch) -> None:
    """Fake boundary: torch made unimportable (as on an install without the `profile` extra)."""
    monkeypatch.setitem(sys.modules, "torch", None)
    assert not fc.lstm_available()
    with pytest.raises(ForecastError, match="needs torch"):
        forecast_peaks(_series(50), "lstm", interval_s=INTERVAL_S)
    result = backtest(_series(30), ["last", "lstm"], interval_s=INTERVAL_S)
    assert [s.method for s in result.scores] == ["last"] and "lstm" in result.skipped


# --------------------------------------------------------------------------- independent references


def test_simple_methods_against_brute_force() -> None:
    y = _series(50, seed=3)
    window = round(fc.MOVING_MAX_WINDOW_S / INTERVAL_S)
    lag = round(SEASON_S / INTERVAL_S)
    last = forecast_peaks(y, "last", interval_s=INTERVAL_S)
    moving = forecast_peaks(y, "moving_max", interval_s=INTERVAL_S)
    seasonal = forecast_peaks(y, "seasonal_naive", interval_s=INTERVAL_S, season_s=SEASON_S)
    ewma = forecast_peaks(y, "ewma", interval_s=INTERVAL_S)
    mean, var = y[0], 0.0
    for t in range(1, len(y)):
        assert last[t] == y[t - 1]
        assert moving[t] == pytest.approx(fc.MOVING_MAX_HEADROOM * max(y[max(0, t - window) : t]))
        assert seasonal[t] == (y[t - lag] if t >= lag else y[t - 1])
        assert ewma[t] == pytest.approx(mean + fc.EWMA_Z * np.sqrt(var))
        # the exponentially weighted mean/variance recursion (West's update)
        diff = y[t] - mean
        mean += fc.EWMA_ALPHA * diff
        var = (1 - fc.EWMA_ALPHA) * (var + fc.EWMA_ALPHA * diff * diff)


HOLT_WINTERS_CASES = [
    pytest.param(None, None, INTERVAL_S, SEASON_S, id="synthetic-seasonal"),  # windows slide; seasonal once long enough
    pytest.param("azure_functions_2019", 1, 60.0, None, id="functions-busiest-1min"),
    pytest.param("azure_functions_2019", 17, 60.0, None, id="functions-17th-1min"),
    pytest.param("azure_llm_2023_code", None, 10.0, None, id="llm-10s"),
]


def _holt_winters_series(trace, top, interval_s) -> np.ndarray:
    return _series(600, seed=5) if trace is None else load_trace(bundled_trace(trace), top=top).peak_rates(interval_s)


@pytest.mark.parametrize("trace, top, interval_s, season_s", HOLT_WINTERS_CASES)
def test_holt_winters_fits_as_well_as_statsmodels_at_each_refit(trace, top, interval_s, season_s) -> None:
    """Independent reference: statsmodels' own fit of the same model on the same window
    (`ExponentialSmoothing(..., initialization_method="heuristic").fit(use_brute=False)`).
    At each re-fit point r our least-squares fit is at least as good (SSE within 1%), its
    initial states are statsmodels', and our forward run with statsmodels' parameters is
    statsmodels' fixed-parameter run; the forecast up to the next re-fit is our model's run."""
    import warnings

    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    from threadpoolctl import threadpool_limits

    from themis.planner.traffic import holt_winters as hw

    y = _holt_winters_series(trace, top, interval_s)
    season_s = season_s or fc.DAY_S
    forecast = forecast_peaks(y, "holt_winters", interval_s=interval_s, season_s=season_s)
    period = round(season_s / interval_s)
    refits = list(fc.refit_points(len(y), growth=fc.HW_REFIT_GROWTH))
    shapes = set()
    with threadpool_limits(1, user_api="blas"):  # as forecast._holt_winters fits (module docstring)
        for r, until in zip(refits, refits[1:] + [len(y)]):
            start, seasonal = fc._holt_winters_window(r, period)
            window = y[start:r]
            if np.ptp(window) == 0:
                continue
            m = period if seasonal else 0
            shapes.add((start > 0, seasonal))
            shape = {"trend": "add", "damped_trend": True, "seasonal": "add" if seasonal else None, "seasonal_periods": m or None}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # statsmodels' convergence warnings
                reference = ExponentialSmoothing(window, initialization_method="heuristic", **shape).fit(use_brute=False)
            ours = hw.fit(window, m)
            assert ours.sse <= reference.sse * 1.01, (r, ours.sse, reference.sse)
            assert ours.sse == pytest.approx(hw.sse(window, ours.state, ours.params), rel=1e-12)
            p = reference.params
            assert ours.state.level == pytest.approx(p["initial_level"], rel=1e-12)
            assert ours.state.trend == pytest.approx(p["initial_trend"], rel=1e-12, abs=1e-12)
            if seasonal:
                np.testing.assert_allclose(ours.state.season, p["initial_seasons"], rtol=1e-12)
            fixed = ExponentialSmoothing(
                y[start:until],
                initialization_method="known",
                initial_level=p["initial_level"],
                initial_trend=p["initial_trend"],
                initial_seasonal=p["initial_seasons"] if seasonal else None,
                **shape,
            ).fit(
                smoothing_level=p["smoothing_level"],
                smoothing_trend=p["smoothing_trend"],
                smoothing_seasonal=p["smoothing_seasonal"] if seasonal else None,
                damping_trend=p["damping_trend"],
                optimized=False,
            )
            theirs = hw.HoltWintersParams(
                p["smoothing_level"], p["smoothing_trend"], p["smoothing_seasonal"] if seasonal else 0.0, p["damping_trend"]
            )
            np.testing.assert_allclose(hw.one_step_forecasts(y[start:until], ours.state, theirs), fixed.fittedvalues, rtol=1e-9)
            expected = np.maximum(ours.forecasts(y[start:until])[r - start :], 0.0)
            np.testing.assert_allclose(forecast[r:until], expected, rtol=1e-12, atol=1e-12)
    if trace is None:
        assert shapes == {(False, False), (False, True), (True, True)}  # each window shape was checked


def test_holt_winters_gradient_against_central_differences() -> None:
    """The SSE's exact gradient (forward-mode, in the unrestricted search coordinates) is
    the central difference of the SSE itself, with and without a season."""
    from themis.planner.traffic import holt_winters as hw

    y = _series(200, seed=2)
    for period in (0, 8):
        state = hw.initial_state(y, period)
        point = np.array([0.3, 0.4, 0.2 if period else 0.0, 0.9])
        gradient = np.empty(4)
        hw._sse_and_gradient(y, state.level, state.trend, state.season, *point, gradient)
        for j in range(4 if period else 2):
            step = np.zeros(4)
            step[j] = 1e-6
            up = hw._sse_and_gradient(y, state.level, state.trend, state.season, *(point + step), np.empty(4))
            down = hw._sse_and_gradient(y, state.level, state.trend, state.season, *(point - step), np.empty(4))
            assert gradient[j] == pytest.approx((up - down) / 2e-6, rel=1e-5)


@pytest.mark.parametrize("method", [m for m in METHODS if m != "lstm"])
def test_forecasts_do_not_depend_on_the_series_length(method) -> None:
    """Element t is the same whether the series ends at t or goes on (re-fit points and
    windows depend on t alone)."""
    y = _series(300, seed=11)
    full = forecast_peaks(y, method, interval_s=INTERVAL_S, season_s=SEASON_S)
    for end in (37, 150, 251):
        np.testing.assert_array_equal(forecast_peaks(y[:end], method, interval_s=INTERVAL_S, season_s=SEASON_S), full[:end])


def reference_auto(y: np.ndarray, interval_s: float, season_s: float) -> np.ndarray:
    """`auto` by its definition, one interval at a time with plain loops and numpy's quantiles
    (the base methods are checked against their own references above)."""
    n, q = len(y), fc.PLANNING_QUANTILE
    calibration = max(1, round(fc.AUTO_CALIBRATION_S / interval_s))
    candidates = []
    for method in fc.AUTO_CANDIDATES:
        base = forecast_peaks(y, method, interval_s=interval_s, season_s=season_s)
        row = np.full(n, np.nan)
        for t in range(1, n):
            errors = [y[s] - base[s] for s in range(max(0, t - calibration), t) if np.isfinite(base[s])]
            row[t] = max(base[t] + (np.quantile(errors, q) if errors else 0.0), 0.0)
        candidates.append(row)
    for window_s in fc.AUTO_QUANTILE_WINDOWS_S:
        window = max(1, round(window_s / interval_s))
        candidates.append(np.array([np.nan] + [np.quantile(y[max(0, t - window) : t], q) for t in range(1, n)]))
    floor_window = max(1, round(fc.FLOOR_WINDOW_S / interval_s))
    floor = np.array([np.median(y[t - floor_window : t]) if t >= floor_window else 0.0 for t in range(n)])
    candidates = [np.where(np.isfinite(c), np.maximum(c, floor), np.nan) for c in candidates]
    losses = [[fc.UNDER_WEIGHT * max(y[t] - np.nan_to_num(c[t]), 0) + max(np.nan_to_num(c[t]) - y[t], 0) for t in range(n)]
              for c in candidates]
    window = max(1, round(fc.AUTO_WINDOW_S / interval_s))
    out, leader = np.full(n, np.nan), 0
    for t in range(n):
        scores = []
        for j in range(len(candidates)):
            diffs = [losses[leader][s] - losses[j][s] for s in range(max(0, t - window), t)]
            scores.append(sum(diffs) - fc.AUTO_SWITCH_Z * np.sqrt(sum(d * d for d in diffs)))
        roundoff = fc.ROUNDOFF * max(sum(row) for row in losses)
        if max(scores) > roundoff:
            leader = next(j for j, score in enumerate(scores) if score >= max(scores) - roundoff)
        out[t] = candidates[leader][t]
    return out


def test_auto_against_its_definition() -> None:
    y = _series(120, seed=7)
    y[60:70] *= 4  # a burst, so that the selection has something to switch on
    auto = forecast_peaks(y, "auto", interval_s=INTERVAL_S, season_s=SEASON_S)
    np.testing.assert_allclose(auto, reference_auto(y, INTERVAL_S, SEASON_S), rtol=1e-9, atol=1e-9)


@settings(max_examples=60)
@given(
    losses=st.lists(st.lists(st.floats(0, 50), min_size=40, max_size=40), min_size=1, max_size=5),
    z=st.sampled_from([0.0, 0.5, 1.5, 3.0]),
    window=st.integers(1, 50),
)
def test_select_by_loss_against_a_loop(losses, z, window) -> None:
    """The block-wise selection equals the rule applied interval by interval."""
    matrix = np.array(losses)
    roundoff = fc.ROUNDOFF * matrix.sum(axis=1).max()
    leader, expected = 0, []
    for t in range(matrix.shape[1]):
        diffs = matrix[leader, max(0, t - window) : t] - matrix[:, max(0, t - window) : t]
        scores = diffs.sum(axis=1) - z * np.sqrt((diffs * diffs).sum(axis=1))
        if scores.max() > roundoff:
            leader = int(np.flatnonzero(scores >= scores.max() - roundoff)[0])
        expected.append(leader)
    np.testing.assert_array_equal(fc.select_by_loss(matrix, z, window), expected)


BUNDLED_CASES = [
    ("azure_llm_2023_code", None, 60.0),
    ("azure_llm_2023_code", None, 10.0),
    ("azure_llm_2023_code", None, 1.0),  # its per-request times, second by second
    ("azure_functions_2019", None, 60.0),  # the sum of all 200 functions
    ("azure_functions_2019", 1, 60.0),  # the busiest function
    ("azure_functions_2021", None, 60.0),
]


@pytest.mark.parametrize("trace, top, interval_s", BUNDLED_CASES)
def test_auto_is_no_worse_than_any_single_method_on_every_bundled_trace(trace, top, interval_s) -> None:
    """On the planning loss `auto` minimises, no single method beats it in hindsight (lstm: below)."""
    peaks = load_trace(bundled_trace(trace), top=top).peak_rates(interval_s)
    auto = planning_loss(peaks, forecast_peaks(peaks, "auto", interval_s=interval_s))
    singles = {m: planning_loss(peaks, forecast_peaks(peaks, m, interval_s=interval_s)) for m in METHODS if m not in ("auto", "lstm")}
    assert auto <= min(singles.values()), (auto, singles)


@pytest.mark.slow  # trains the LSTM at every re-fit point
@pytest.mark.parametrize("trace, top, interval_s", BUNDLED_CASES)
def test_auto_is_no_worse_than_the_lstm_on_every_bundled_trace(trace, top, interval_s) -> None:
    pytest.importorskip("torch")
    peaks = load_trace(bundled_trace(trace), top=top).peak_rates(interval_s)
    auto = planning_loss(peaks, forecast_peaks(peaks, "auto", interval_s=interval_s))
    assert auto <= planning_loss(peaks, forecast_peaks(peaks, "lstm", interval_s=interval_s))


@settings(max_examples=40)
@given(
    peaks=st.lists(st.floats(0, 1000), min_size=1, max_size=150),
    interval_s=st.sampled_from([10.0, 60.0, 120.0]),
)
def test_auto_never_plans_below_the_median_of_recent_peaks(peaks, interval_s) -> None:
    y = np.array(peaks)
    auto = forecast_peaks(y, "auto", interval_s=interval_s)
    window = max(1, round(fc.FLOOR_WINDOW_S / interval_s))
    for t in range(window, len(y)):
        assert auto[t] >= np.median(y[t - window : t]) - 1e-9 * max(1.0, y.max())


def test_planning_loss_by_hand() -> None:
    actual, forecast = np.array([5.0, 10, 0, 20]), np.array([np.nan, 12, 3, 10])
    np.testing.assert_array_equal(fc.interval_planning_loss(actual, forecast), [0.0, 2, 3, 40])
    assert planning_loss(actual, forecast) == pytest.approx((2 + 3 + 40) / 30)
    assert np.isnan(planning_loss(np.zeros(3), np.ones(3)))


# --------------------------------------------------------------------------- backtest


def test_score_by_hand() -> None:
    score = score_forecast("x", np.array([5.0, 10, 0, 20]), np.array([np.nan, 12, 3, 10]))
    assert score.planning_loss == pytest.approx((2 + 3 + 40) / 30)  # 4 x 10 short at the last interval
    assert score.mape_pct == pytest.approx((0.2 + 0.5) / 2 * 100)
    assert score.under_rate == pytest.approx(1 / 3)
    assert score.over_provisioning_ratio == pytest.approx(25 / 30)
    assert score.intervals == 3


def test_backtest_on_the_real_llm_trace(llm_trace_path) -> None:
    trace = load_trace(llm_trace_path)
    methods = [m for m in METHODS if m != "lstm"]
    result = backtest_trace(trace, methods, interval_s=60.0)
    peaks = trace.peak_rates(60.0)
    assert [s.method for s in result.scores] == methods
    for score in result.scores:
        expected = score_forecast(score.method, peaks, forecast_peaks(peaks, score.method, interval_s=60.0))
        assert score == expected
        assert score.intervals == len(peaks) - 1
    by_method = {s.method: s for s in result.scores}
    assert by_method["moving_max"].under_rate < by_method["last"].under_rate  # headroom buys fewer misses
    payload = result.to_dict()
    assert payload["schema_version"] == 1 and payload["kind"] == "forecast_backtest"
    assert {"method", "planning_loss", "mape_pct", "under_rate", "over_provisioning_ratio", "intervals"} == set(payload["methods"][0])
