"""Time one cell (model, device, cores, batch size) and summarise it as one record.

Warm-up calls first, then timed calls until both the time budget and the minimum sample
count are met, stopping earlier once the running median has settled. CPU calls are timed
with `perf_counter_ns`; GPU calls with CUDA events (the GPU's own clock, no host jitter).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class Budget:
    """How long to measure one cell."""

    budget_s: float = 1.0  # time spent on timed calls, once min_samples is reached
    min_samples: int = 10
    warmup: int = 3
    stable_after: int = 100  # a stable median may end the cell early only after this many calls
    stable_tolerance: float = 0.01  # ... and only when it moved less than this fraction

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CellRecord:
    """One row of the profile table (columns as in `themis.profiler.table.COLUMNS`)."""

    model: str
    device_kind: str
    device_name: str
    device_id: str
    cores: int
    batch_size: int
    dtype: str
    input_shape: str
    p50_ms: float = math.nan
    p90_ms: float = math.nan
    p95_ms: float = math.nan
    p99_ms: float = math.nan
    mean_ms: float = math.nan
    std_ms: float = math.nan
    min_ms: float = math.nan
    max_ms: float = math.nan
    samples: int = 0
    throughput_ips: float = math.nan
    peak_memory_mb: float = math.nan
    status: str = "ok"
    error: str = ""

    def with_times(self, times_ms: list[float]) -> CellRecord:
        """Fill the latency statistics from the per-call times (ms)."""
        values = np.asarray(times_ms, dtype=float)
        p50, p90, p95, p99 = np.percentile(values, [50, 90, 95, 99])
        self.p50_ms, self.p90_ms, self.p95_ms, self.p99_ms = float(p50), float(p90), float(p95), float(p99)
        self.mean_ms = float(values.mean())
        self.std_ms = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        self.min_ms, self.max_ms = float(values.min()), float(values.max())
        self.samples = len(values)
        self.throughput_ips = self.batch_size * 1000.0 / self.mean_ms
        return self

    def to_row(self) -> dict[str, Any]:
        return asdict(self)


def time_calls(call: Callable[[], Any], budget: Budget, timer: Callable[[Callable[[], Any]], float]) -> list[float]:
    """Warm up, then time `call` until budget and min_samples are met or the median is stable."""
    for _ in range(budget.warmup):
        call()
    times_ms: list[float] = []
    started = time.perf_counter()
    next_check, last_median = budget.min_samples, math.nan
    while True:
        times_ms.append(timer(call))
        n = len(times_ms)
        if n < budget.min_samples:
            continue
        if time.perf_counter() - started >= budget.budget_s:
            return times_ms
        if n >= next_check:
            median = float(np.median(times_ms))
            if abs(median - last_median) <= budget.stable_tolerance * last_median and n >= budget.stable_after:
                return times_ms
            last_median, next_check = median, max(n + 5, int(n * 1.25))


def cpu_timer(call: Callable[[], Any]) -> float:
    """Wall time of one call in ms (the CPU runs it synchronously)."""
    start = time.perf_counter_ns()
    call()
    return (time.perf_counter_ns() - start) / 1e6


def cuda_timer(torch: Any) -> Callable[[Callable[[], Any]], float]:
    """Time one call with CUDA events recorded around it on the current stream."""

    def timer(call: Callable[[], Any]) -> float:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        call()
        end.record()
        end.synchronize()
        return float(start.elapsed_time(end))

    return timer


def reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS counter of this process (Linux), so each cell has its own peak."""
    with contextlib.suppress(OSError):
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")


def peak_rss_mb() -> float:
    """Peak resident memory of this process since the last reset (VmHWM), in MB."""
    with contextlib.suppress(OSError):
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def is_out_of_memory(error: BaseException) -> bool:
    """Both torch's CUDA OOM and the CPU allocator's failure count as out of memory."""
    if isinstance(error, MemoryError):
        return True
    text = str(error).lower()
    return type(error).__name__ == "OutOfMemoryError" or "out of memory" in text or "can't allocate memory" in text


def measure_cell(record: CellRecord, module: Any, make_input: Callable[[int], Any], budget: Budget) -> CellRecord:
    """Measure `module` at `record.batch_size` on `record.device_kind`; fills and returns `record`.

    Never raises for a failing model: an out-of-memory call gives status `oom`, any
    other exception status `error`, each with the message.
    """
    import torch

    on_gpu = record.device_kind == "cuda"
    try:
        inputs = make_input(record.batch_size)
        if on_gpu:
            torch.cuda.reset_peak_memory_stats()
        else:
            reset_peak_rss()

        with torch.inference_mode():  # entered once, as a serving loop would, not per call
            times_ms = time_calls(lambda: module(inputs), budget, cuda_timer(torch) if on_gpu else cpu_timer)
        record.with_times(times_ms)
        record.peak_memory_mb = torch.cuda.max_memory_allocated() / 2**20 if on_gpu else peak_rss_mb()
    except Exception as error:  # the model's failure is a measured outcome, not a themis bug
        record.status = "oom" if is_out_of_memory(error) else "error"
        record.error = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"[:500]
    finally:
        if on_gpu:
            torch.cuda.empty_cache()
    return record
