"""One cell: the stopping rule, the statistics, memory and the out-of-memory classification."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from themis.profiler.measure import (
    Budget,
    CellRecord,
    cpu_timer,
    is_out_of_memory,
    measure_cell,
    time_calls,
)
from themis.sample_models import SAMPLE_MODELS


def _record(batch_size: int = 4) -> CellRecord:
    return CellRecord("small_cnn", "cpu", "test cpu", "", 1, batch_size, "float32", "3x32x32")


def test_statistics_match_numpy() -> None:
    times = list(np.random.default_rng(0).lognormal(1.0, 0.3, 257))
    record = _record(batch_size=8).with_times(times)
    np.testing.assert_allclose([record.p50_ms, record.p90_ms, record.p95_ms, record.p99_ms], np.percentile(times, [50, 90, 95, 99]))
    assert record.mean_ms == pytest.approx(np.mean(times)) and record.std_ms == pytest.approx(np.std(times, ddof=1))
    assert (record.min_ms, record.max_ms, record.samples) == (min(times), max(times), 257)
    assert record.throughput_ips == pytest.approx(8 * 1000 / np.mean(times))


def test_min_samples_are_taken_even_past_the_budget() -> None:
    calls = []
    times = time_calls(lambda: (calls.append(1), time.sleep(0.01)), Budget(budget_s=0.001, min_samples=7, warmup=2), cpu_timer)
    assert len(times) == 7 and len(calls) == 9  # 2 warm-up calls are not timed
    assert min(times) >= 10.0


def test_budget_ends_a_noisy_cell() -> None:
    rng = np.random.default_rng(1)
    started = time.perf_counter()
    times = time_calls(lambda: time.sleep(rng.choice([0.0005, 0.004])), Budget(budget_s=0.2, min_samples=3, warmup=0, stable_tolerance=0.0), cpu_timer)
    assert 0.2 <= time.perf_counter() - started < 1.0 and len(times) > 3


def test_a_stable_median_ends_the_cell_before_the_budget() -> None:
    budget = Budget(budget_s=30.0, min_samples=10, warmup=0, stable_after=50, stable_tolerance=0.5)
    started = time.perf_counter()
    times = time_calls(lambda: time.sleep(0.001), budget, cpu_timer)
    assert 50 <= len(times) < 200 and time.perf_counter() - started < 5


def test_measure_cell_on_a_real_model() -> None:
    model = SAMPLE_MODELS["small_cnn"].build()
    record = measure_cell(_record(), model, lambda b: torch.randn(b, 3, 32, 32), Budget(budget_s=0.05, min_samples=5, warmup=1))
    assert record.status == "ok" and record.error == "" and record.samples >= 5
    assert record.min_ms <= record.p50_ms <= record.p99_ms <= record.max_ms
    assert record.peak_memory_mb > 10


def test_measure_cell_records_a_real_allocator_failure_as_oom() -> None:
    record = measure_cell(_record(), lambda x: torch.empty(2**50, dtype=torch.uint8), lambda b: torch.zeros(b), Budget())
    assert record.status == "oom" and "alloc" in record.error and record.samples == 0


def test_measure_cell_records_other_failures_as_error() -> None:
    model = SAMPLE_MODELS["mlp"].build()
    record = measure_cell(_record(), model, lambda b: torch.randn(b, 3), Budget())
    assert record.status == "error" and record.error.startswith("RuntimeError")


@pytest.mark.parametrize(
    ("error", "oom"),
    [(MemoryError(), True), (RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"), True),
     (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes"), True),
     (RuntimeError("mat1 and mat2 shapes cannot be multiplied"), False), (ValueError("x"), False)],
)
def test_out_of_memory_classification(error: Exception, oom: bool) -> None:
    assert is_out_of_memory(error) is oom
