"""The stability criterion: the spread of window medians and the `--stability` parser."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from themis.profiler.errors import BadOptionError
from themis.profiler.stability import Stability, parse_stability, window_spread


def test_spread_is_relative_to_the_median() -> None:
    assert window_spread([10.0, 10.5, 9.5]) == pytest.approx(0.1)
    assert window_spread([5.0]) == 0.0 and math.isnan(window_spread([]))
    stability = Stability(k=3, tolerance=0.05)
    assert math.isnan(stability.spread([1.0, 1.0]))  # fewer than k windows: not yet judged
    assert stability.is_stable([50.0, 10.0, 10.2, 10.1]) and not stability.is_stable([10.0, 11.0, 10.0])
    assert Stability(enabled=False).is_stable([1.0, 100.0])


@pytest.mark.parametrize(
    ("text", "expected"),
    [("5%", Stability()), ("k=3,tol=5%", Stability()), ("tol=0.02", Stability(tolerance=0.02)),
     ("k=4, tol=2%, windows=12, calls=20", Stability(k=4, tolerance=0.02, max_windows=12, window_calls=20)),
     ("off", Stability(enabled=False)), ("10%", Stability(tolerance=0.1))],
)
def test_parse_stability(text: str, expected: Stability) -> None:
    assert parse_stability(text) == expected


@pytest.mark.parametrize("text", ["k=1", "k=5,windows=4", "tol=0", "tol=150%", "fast", "k=two", "speed=3", "tol=5%%", "calls=0"])
def test_bad_stability_is_an_option_error(text: str) -> None:
    with pytest.raises(BadOptionError, match="--stability"):
        parse_stability(text)


@given(st.integers(2, 9), st.integers(1, 99), st.integers(0, 20), st.integers(1, 50))
def test_parse_stability_round_trips(k: int, tolerance_pct: int, extra_windows: int, calls: int) -> None:
    text = f"k={k},tol={tolerance_pct}%,windows={k + extra_windows},calls={calls}"
    assert parse_stability(text) == Stability(k=k, tolerance=tolerance_pct / 100, max_windows=k + extra_windows, window_calls=calls)


@given(st.lists(st.floats(0.01, 1e6), min_size=1, max_size=20), st.floats(0.1, 10))
def test_spread_does_not_depend_on_the_unit(medians: list[float], scale: float) -> None:
    assert window_spread([m * scale for m in medians]) == pytest.approx(window_spread(medians), rel=1e-9)
