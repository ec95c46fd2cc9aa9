"""Timing primitives and the cell record: pooled statistics, windows, the p99 sample floor, OOM classification."""

from __future__ import annotations

import time

import numpy as np
import pytest

from themis.profiler.errors import BadOptionError
from themis.profiler.measure import (
    P99_MIN_SAMPLES,
    Budget,
    CellRecord,
    cpu_timer,
    failure_text,
    is_out_of_memory,
    time_window,
)


def _record(batch_size: int = 4) -> CellRecord:
    return CellRecord("small_cnn", "cpu", "test cpu", "", 1, batch_size, "float32", "3x32x32")


def test_pooled_statistics_match_numpy_on_the_concatenated_calls() -> None:
    rng = np.random.default_rng(0)
    per_process = [list(rng.lognormal(1.0 + 0.05 * i, 0.3, n)) for i, n in enumerate((101, 77, 130))]
    record = _record(batch_size=8).with_samples(per_process)
    pooled = np.concatenate(per_process)
    np.testing.assert_allclose([record.p50_ms, record.p90_ms, record.p95_ms, record.p99_ms], np.percentile(pooled, [50, 90, 95, 99]))
    assert record.mean_ms == pytest.approx(pooled.mean()) and record.std_ms == pytest.approx(pooled.std(ddof=1))
    assert (record.min_ms, record.max_ms, record.samples, record.processes) == (pooled.min(), pooled.max(), 308, 3)
    assert record.throughput_ips == pytest.approx(8 * 1000 / pooled.mean())
    assert record.samples_ms == pooled.tolist() and record.process_samples == [101, 77, 130]


def test_a_window_takes_both_its_calls_and_its_seconds() -> None:
    calls = []
    times = time_window(lambda: (calls.append(1), time.sleep(0.002)), cpu_timer, min_calls=7, min_s=0.0)
    assert len(times) == len(calls) == 7 and min(times) >= 2.0
    started = time.perf_counter()
    times = time_window(lambda: time.sleep(0.002), cpu_timer, min_calls=1, min_s=0.05)
    assert sum(times) >= 50.0 and len(times) >= 2 and time.perf_counter() - started < 5


@pytest.mark.parametrize("min_samples", [1, 10, P99_MIN_SAMPLES - 1])
def test_fewer_calls_than_a_p99_needs_are_refused(min_samples: int) -> None:
    with pytest.raises(BadOptionError, match="--min-samples.*p99"):
        Budget(min_samples=min_samples).validate()
    Budget(min_samples=P99_MIN_SAMPLES).validate()


def test_failure_text_is_one_short_line() -> None:
    text = failure_text(RuntimeError("first line\nsecond line " + "x" * 1000))
    assert text == "RuntimeError: first line" and "\n" not in failure_text(ValueError("a" * 2000))
    assert len(failure_text(ValueError("a" * 2000))) == 500


@pytest.mark.parametrize(
    ("error", "oom"),
    [(MemoryError(), True), (RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"), True),
     (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes"), True),
     (RuntimeError("mat1 and mat2 shapes cannot be multiplied"), False), (ValueError("x"), False)],
)
def test_out_of_memory_classification(error: Exception, oom: bool) -> None:
    assert is_out_of_memory(error) is oom
