"""Additive damped-trend Holt-Winters, optionally additive-seasonal, fitted by least squares.

The `holt_winters` forecaster (`forecast.py`) re-fits this model about 15-30 times per
series. statsmodels' `ExponentialSmoothing.fit` took ~15 ms a fit, nearly all of it Python:
L-BFGS-B with finite-difference gradients, each evaluation a Python loop over the window.
That was 60% of planning a fleet service. Here the same fit takes about 1.5 ms (at load 6
on 2 cores), most of it scipy's own bookkeeping: one numba pass gives the sum of squared errors (SSE) *and* its exact gradient
(forward-mode derivatives carried through the recursion), so L-BFGS-B needs one call per
step instead of one per parameter plus one.

The model is statsmodels' `ExponentialSmoothing(trend="add", damped_trend=True,
seasonal="add" or None, initialization_method="heuristic")`, state for state (statsmodels
0.15, `holtwinters/_smoothers.py`). With level l, trend b, season slots s (period m; none
when not seasonal), the forecast of y[i] made from y[:i] is f = l + phi b + s[i mod m], and
after y[i]:

    l' = alpha (y[i] - s[i mod m]) + (1 - alpha) (l + phi b)
    b' = beta (l' - l) + (1 - beta) phi b
    s[i mod m]' = gamma (y[i] - l - phi b) + (1 - gamma) s[i mod m]

What is fitted, and how, matches statsmodels' `fit(use_brute=False)` (`holtwinters/model.py`):

- Initial states: statsmodels' own `_initialization_heuristic` (Hyndman et al., section
  2.6), not fitted.
- Objective: the SSE of the one-step forecasts over the fit window.
- Parameters: alpha, beta, phi, and gamma when seasonal, searched by scipy's L-BFGS-B
  in statsmodels' unrestricted coordinates, each in [0, 1]: alpha = e + u_a (1 - 2e) with
  e = sqrt(machine epsilon), beta = u_b alpha, gamma = u_g (1 - alpha), which enforce its
  bounds (all three in [0, 1]) and constraints (beta <= alpha, gamma <= 1 - alpha); phi in
  statsmodels' damping bounds [0.8, 0.995].
- Start: statsmodels' starting values (alpha = 0.5 / max(m, 1), beta = 0.1 alpha,
  gamma = 0.05 (1 - alpha), phi = 0.99). Warm-starting from the previous re-fit's optimum
  was tried and dropped: no faster, and on 43 of 1,100 re-fits of the bundled functions it
  stayed in a worse local minimum (alpha = 0) where this start does not.
- BLAS: the caller holds it to one thread (`forecast._holt_winters`); L-BFGS-B's steps are
  tiny, and with two BLAS threads a fit took 90 ms instead of 3.6 ms (same run, load 6).

An exact gradient where statsmodels differences numerically means the optimiser stops in
the same or a better place: the tests hold our SSE to at most statsmodels' own fit's x 1.01
at every re-fit point, and our forward run with statsmodels' parameters to its
fixed-parameter run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

_EDGE = float(np.sqrt(np.finfo(float).eps))
"""statsmodels' `LOWER_BOUND`: alpha stays this far inside (0, 1)."""
PHI_BOUNDS = (0.8, 0.995)
"""statsmodels' default bounds of the damping parameter phi."""


@dataclass(frozen=True)
class HoltWintersParams:
    """Smoothing of level (alpha), trend (beta), season (gamma; 0 without one), damping (phi)."""

    alpha: float
    beta: float
    gamma: float
    phi: float


@dataclass(frozen=True)
class HoltWintersState:
    """The states before the first observation of a window: level, trend, and one season
    slot per interval of the period (empty when not seasonal)."""

    level: float
    trend: float
    season: np.ndarray

    @property
    def period(self) -> int:
        return len(self.season)


@dataclass(frozen=True)
class HoltWintersFit:
    """A fitted model: its initial states, parameters, and SSE on the window it was fitted on."""

    state: HoltWintersState
    params: HoltWintersParams
    sse: float

    def forecasts(self, y: np.ndarray) -> np.ndarray:
        """One-step forecasts of `y` (starting with the fitted window, possibly going on past
        it), parameters held fixed: element i is made from `y[:i]`."""
        return one_step_forecasts(np.asarray(y, dtype=np.float64), self.state, self.params)


def initial_state(history: np.ndarray, period: int) -> HoltWintersState:
    """statsmodels' heuristic initial states for `history` (at least 10 points; with
    `period` > 0, also at least two seasons and 10 + 2 (period // 2) points)."""
    from statsmodels.tsa.exponential_smoothing.initialization import _initialization_heuristic

    y = np.asarray(history, dtype=np.float64)
    level, trend, season = _initialization_heuristic(y, "add", "add" if period else False, period or None)
    return HoltWintersState(float(level), float(trend), np.asarray(season if period else [], dtype=np.float64))


def fit(history: np.ndarray, period: int) -> HoltWintersFit:
    """Least-squares fit of the model (seasonal when `period` > 0) to `history` (module docstring)."""
    from scipy.optimize import minimize

    y = np.asarray(history, dtype=np.float64)
    state = initial_state(y, period)
    seasonal = period > 0
    alpha0 = 0.5 / max(period, 1)
    start = _unrestricted(HoltWintersParams(alpha0, 0.1 * alpha0, 0.05 * (1 - alpha0) if seasonal else 0.0, 0.99), seasonal)
    gradient = np.empty(4)

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        value = _sse_and_gradient(y, state.level, state.trend, state.season, x[0], x[1], x[2] if seasonal else 0.0, x[-1], gradient)
        return value, (gradient if seasonal else gradient[[0, 1, 3]]).copy()

    bounds = [(0.0, 1.0)] * (3 if seasonal else 2) + [PHI_BOUNDS]
    result = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds)
    params = _restricted(result.x, seasonal)
    return HoltWintersFit(state, params, sse(y, state, params))


def sse(y: np.ndarray, state: HoltWintersState, params: HoltWintersParams) -> float:
    """The sum of squared one-step errors of the model over `y`."""
    errors = np.asarray(y, dtype=np.float64) - one_step_forecasts(y, state, params)
    return float(errors @ errors)


def one_step_forecasts(y: np.ndarray, state: HoltWintersState, params: HoltWintersParams) -> np.ndarray:
    """The model's one-step forecasts of `y` from `state` with fixed `params`."""
    p = params
    return _run(np.asarray(y, dtype=np.float64), state.level, state.trend, state.season, p.alpha, p.beta, p.gamma, p.phi)


def _restricted(x: np.ndarray, seasonal: bool) -> HoltWintersParams:
    """statsmodels' `to_restricted`: the unrestricted search point as parameters."""
    alpha = _EDGE + float(x[0]) * (1 - 2 * _EDGE)
    gamma = float(x[2]) * (1 - alpha) if seasonal else 0.0
    return HoltWintersParams(alpha, float(x[1]) * alpha, gamma, float(x[-1]))


def _unrestricted(params: HoltWintersParams, seasonal: bool) -> np.ndarray:
    """statsmodels' `to_unrestricted` (its starting values are inside the search box)."""
    alpha = params.alpha
    point = [(alpha - _EDGE) / (1 - 2 * _EDGE), params.beta / alpha]
    if seasonal:
        point.append(params.gamma / (1 - alpha))
    point.append(params.phi)
    return np.array(point)


@numba.njit(cache=True)
def _run(y, level, trend, season0, alpha, beta, gamma, phi):  # type: ignore[no-untyped-def]
    """One-step forecasts of y (statsmodels' recursion, in its order of operations)."""
    m = len(season0)
    season = season0.copy()
    out = np.empty(len(y))
    for i in range(len(y)):
        damped = level + phi * trend
        s = season[i % m] if m else 0.0
        out[i] = damped + s
        new_level = alpha * y[i] - alpha * s + (1 - alpha) * damped
        trend = beta * (new_level - level) + (1 - beta) * phi * trend
        if m:
            season[i % m] = gamma * y[i] - gamma * damped + (1 - gamma) * s
        level = new_level
    return out


@numba.njit(cache=True)
def _sse_and_gradient(y, level, trend, season0, u_alpha, u_beta, u_gamma, phi, gradient):  # type: ignore[no-untyped-def]
    """The SSE at the unrestricted point (u_alpha, u_beta, u_gamma, phi) and, into
    `gradient`, its derivatives in those four coordinates (u_gamma's is 0 without a season).

    Forward mode: `*_a`, `*_b`, `*_g`, `*_p` are each state's derivatives with respect to
    alpha, beta, gamma and phi, carried through the recursion (scalars, so that numba keeps
    them in registers); the chain rule to the unrestricted coordinates comes last."""
    edge = 1.4901161193847656e-08  # sqrt(machine epsilon), as _EDGE
    alpha = edge + u_alpha * (1 - 2 * edge)
    beta = u_beta * alpha
    gamma = u_gamma * (1 - alpha)
    m = len(season0)
    slots = max(m, 1)
    season = np.zeros(slots)
    d_season = np.zeros((slots, 4))  # per slot: d/d alpha, beta, gamma, phi
    if m:
        season[:] = season0
    level_a = level_b = level_g = level_p = 0.0
    trend_a = trend_b = trend_g = trend_p = 0.0
    sse_a = sse_b = sse_g = sse_p = 0.0
    total = 0.0
    k = 0
    for i in range(len(y)):
        s = season[k]
        s_a, s_b, s_g, s_p = d_season[k, 0], d_season[k, 1], d_season[k, 2], d_season[k, 3]
        damped = level + phi * trend
        damped_a = level_a + phi * trend_a
        damped_b = level_b + phi * trend_b
        damped_g = level_g + phi * trend_g
        damped_p = level_p + phi * trend_p + trend
        error = y[i] - damped - s
        total += error * error
        sse_a -= 2.0 * error * (damped_a + s_a)
        sse_b -= 2.0 * error * (damped_b + s_b)
        sse_g -= 2.0 * error * (damped_g + s_g)
        sse_p -= 2.0 * error * (damped_p + s_p)
        # level
        new_level = alpha * (y[i] - s) + (1 - alpha) * damped
        new_a = -alpha * s_a + (1 - alpha) * damped_a + (y[i] - s - damped)
        new_b = -alpha * s_b + (1 - alpha) * damped_b
        new_g = -alpha * s_g + (1 - alpha) * damped_g
        new_p = -alpha * s_p + (1 - alpha) * damped_p
        # trend
        new_trend = beta * (new_level - level) + (1 - beta) * phi * trend
        trend_a = beta * (new_a - level_a) + (1 - beta) * phi * trend_a
        trend_b = beta * (new_b - level_b) + (1 - beta) * phi * trend_b + (new_level - level - phi * trend)
        trend_g = beta * (new_g - level_g) + (1 - beta) * phi * trend_g
        trend_p = beta * (new_p - level_p) + (1 - beta) * (phi * trend_p + trend)
        # season (this slot comes round again in m intervals)
        if m:
            season[k] = gamma * (y[i] - damped) + (1 - gamma) * s
            d_season[k, 0] = -gamma * damped_a + (1 - gamma) * s_a
            d_season[k, 1] = -gamma * damped_b + (1 - gamma) * s_b
            d_season[k, 2] = -gamma * damped_g + (1 - gamma) * s_g + (y[i] - damped - s)
            d_season[k, 3] = -gamma * damped_p + (1 - gamma) * s_p
            k = k + 1 if k + 1 < m else 0
        level, level_a, level_b, level_g, level_p = new_level, new_a, new_b, new_g, new_p
        trend = new_trend
    # chain rule: alpha = edge + u_a (1 - 2 edge), beta = u_b alpha, gamma = u_g (1 - alpha)
    scale = 1 - 2 * edge
    gradient[0] = (sse_a + sse_b * u_beta - sse_g * u_gamma) * scale
    gradient[1] = sse_b * alpha
    gradient[2] = sse_g * (1 - alpha) if m else 0.0
    gradient[3] = sse_p
    return total
