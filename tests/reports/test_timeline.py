"""The report's aggregation of day-long series, checked against plain numpy and pandas on
the golden day (tests/data/report/README.md) and the bundled dated LLM trace."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from themis.planner.model.serving import load_schedule
from themis.planner.traffic.loading import load_trace
from themis.reports.timeline import (
    INTERACTIVE_POINTS,
    STATIC_POINTS,
    bucket_s,
    latency_buckets,
    planned_load,
    rate_band,
    time_axis,
)

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "report"


@pytest.fixture(scope="module")
def day_requests() -> pd.DataFrame:
    return pd.read_parquet(GOLDEN / "requests.parquet")


def test_buckets_are_round_multiples_of_the_data_and_few_enough() -> None:
    assert bucket_s(86_400.0, 60.0, STATIC_POINTS) == 300.0  # a day of minutes: 5-minute buckets
    assert bucket_s(86_400.0, 1.0, INTERACTIVE_POINTS) == 60.0
    assert bucket_s(3_436.0, 1.0, INTERACTIVE_POINTS) == 3.0
    assert bucket_s(600.0, 60.0, STATIC_POINTS) == 60.0  # never finer than the data
    for duration in (59.0, 900.0, 3_600.0, 86_400.0, 7 * 86_400.0):
        size = bucket_s(duration, 1.0, STATIC_POINTS)
        assert duration / size <= STATIC_POINTS and size == int(size)


def test_rate_band_matches_the_counts(functions_2019_path) -> None:
    trace = load_trace(functions_2019_path).scaled(3)
    band = rate_band(trace, STATIC_POINTS)
    per_minute = trace.counts / 60.0
    grouped = per_minute.reshape(-1, 5)  # 300 s buckets of 60 s counts
    assert band.bucket_s == 300.0 and band.finest_s == 60.0 and len(band.t_s) == 288
    np.testing.assert_allclose(band.mid, trace.counts.reshape(-1, 5).sum(axis=1) / 300.0)
    np.testing.assert_allclose(band.low, grouped.min(axis=1))
    np.testing.assert_allclose(band.high, grouped.max(axis=1))


def test_per_request_traces_band_their_per_second_rates(llm_trace_path) -> None:
    trace = load_trace(llm_trace_path)
    band = rate_band(trace, STATIC_POINTS)
    seconds = np.bincount(trace.arrivals_s.astype(int))
    assert band.finest_s == 1.0 and band.bucket_s == 12.0
    first = seconds[:12]
    assert (band.low[0], band.mid[0], band.high[0]) == (first.min(), pytest.approx(first.mean()), first.max())
    assert band.high.max() == seconds.max()  # the busiest second survives aggregation


def test_latency_buckets_match_pandas(day_requests) -> None:
    buckets = latency_buckets(day_requests, STATIC_POINTS)
    assert buckets.bucket_s == 300.0 and len(buckets.t_s) <= STATIC_POINTS
    for k in (0, 100, len(buckets.t_s) - 1):
        inside = day_requests[(day_requests["arrival_s"] >= buckets.t_s[k]) & (day_requests["arrival_s"] < buckets.t_s[k] + 300.0)]
        assert buckets.p50_ms[k] == pytest.approx(inside["latency_ms"].quantile(0.5))
        assert buckets.p99_ms[k] == pytest.approx(inside["latency_ms"].quantile(0.99))
        assert buckets.max_ms[k] == inside["latency_ms"].max()


def test_planned_load_keeps_the_highest_step_of_a_bucket() -> None:
    schedule = load_schedule(GOLDEN / "plan.json")
    load = planned_load(schedule, 300.0)
    forecast = np.array([s.forecast_rps for s in schedule.steps]).reshape(-1, 5)
    np.testing.assert_allclose(load.high, forecast.max(axis=1))
    np.testing.assert_allclose(load.low, forecast.min(axis=1))


def test_time_axes_read_as_hours_minutes_or_clock_time() -> None:
    assert time_axis(None, 86_400.0).label == "hours from trace start"
    assert list(time_axis(None, 86_400.0).positions(np.array([0.0, 5_400.0]))) == [0.0, 1.5]
    assert time_axis(None, 900.0).label == "minutes from trace start"
    dated = time_axis("2023-11-16T18:17:03.979960", 3_436.0)
    assert dated.label == "time (UTC, 2023-11-16)"
    (moment,) = dated.positions(np.array([60.0]))
    assert pd.Timestamp(moment).to_pydatetime() == datetime(2023, 11, 16, 18, 18, 3, 979000)
    assert time_axis("2023-11-16T23:00:00+01:00", 7_200.0).start == datetime(2023, 11, 16, 22, 0, tzinfo=timezone.utc)
    assert time_axis("2023-11-16T23:00:00+00:00", 7_200.0).label == "time (UTC, 2023-11-16 to 2023-11-17)"
    assert time_axis("2023-11-17T00:30:00+01:00", 600.0).label == "time (UTC, 2023-11-16)"
