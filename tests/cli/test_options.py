"""Property tests of the shared option parsers: what they accept round-trips, the rest is one InputError."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from themis.cli.options import (
    parse_duration_ms,
    parse_duration_s,
    parse_fraction,
    parse_int_list,
    parse_prices,
)
from themis.common.errors import InputError


@given(st.lists(st.integers(1, 4096), min_size=1, max_size=8))
def test_int_lists_round_trip_sorted_without_repeats(values: list[int]) -> None:
    assert parse_int_list(",".join(map(str, values)), "--batch-sizes") == tuple(sorted(set(values)))


@pytest.mark.parametrize("text", ["", "1,,2", "1,x", "0", "-1", "1.5", "1;2"])
def test_int_lists_reject_garbage_naming_the_option(text: str) -> None:
    with pytest.raises(InputError, match="--batch-sizes"):
        parse_int_list(text, "--batch-sizes")


@given(st.floats(0.001, 1e6, allow_nan=False), st.sampled_from([("ms", 1e-3), ("s", 1.0), ("m", 60.0), ("h", 3600.0)]))
def test_durations_with_units(value: float, unit: tuple[str, float]) -> None:
    suffix, seconds = unit
    assert parse_duration_s(f"{value!r}{suffix}", "--interval") == pytest.approx(value * seconds)


def test_a_bare_slo_is_milliseconds_and_a_bare_interval_seconds() -> None:
    assert parse_duration_ms("200", "--slo") == pytest.approx(200.0)
    assert parse_duration_ms("0.2s", "--slo") == pytest.approx(200.0)
    assert parse_duration_s("60", "--interval") == 60.0


@given(st.text(max_size=12).filter(lambda t: not any(c.isdigit() for c in t)))
def test_text_without_a_number_is_not_a_duration(text: str) -> None:
    with pytest.raises(InputError, match="--slo"):
        parse_duration_ms(text, "--slo")


def test_fractions_take_percent_or_a_plain_number() -> None:
    assert parse_fraction("10%", "--max-regression") == pytest.approx(0.1)
    assert parse_fraction("0.1", "--max-regression") == pytest.approx(0.1)
    with pytest.raises(InputError, match="--max-regression"):
        parse_fraction("ten", "--max-regression")


def test_prices_split_cpu_from_gpus() -> None:
    assert parse_prices("cpu=0.05,a100=2.5") == (0.05, {"a100": 2.5})
    assert parse_prices("0.04") == (0.04, {})
    for bad in ("cpu=cheap", "cpu=-1"):
        with pytest.raises(InputError, match="--price"):
            parse_prices(bad)
