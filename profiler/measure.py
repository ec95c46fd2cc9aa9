"""Timing primitives and the record of one cell (model, device, cores, batch size).

Calls are timed in windows (`time_window`); the worker interleaves the windows of all its
cells (`themis.profiler.column`) and the parent pools the calls of several worker
processes into one `CellRecord`. CPU calls are timed with `perf_counter_ns`; GPU calls
with CUDA events (the GPU's own clock, no host jitter).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from themis.profiler.errors import BadOptionError

P99_MIN_SAMPLES = 100
"""Timed calls a cell needs, all processes together, because the profile reports a p99.

With n calls, on average n/100 of them lie above the true p99; below 100 none is expected
to, and the "p99" is just the largest call seen. 100 is the least that makes it an
interpolated percentile; a distribution-free 95% upper confidence bound on the p99 needs
about 300 (0.99^300 = 5%): pass `--min-samples 300` where the tail itself is gated.
"""


@dataclass(frozen=True)
class Budget:
    """How much to measure each cell, all worker processes together."""

    budget_s: float = 1.0  # seconds of timed calls per cell, at least (split across processes)
    min_samples: int = P99_MIN_SAMPLES  # timed calls per cell, at least (split across processes)
    warmup: int = 3  # untimed calls per batch size, before any batch size is timed

    def validate(self) -> None:
        if self.budget_s <= 0 or self.warmup < 0:
            raise BadOptionError("--budget-s must be > 0 and --warmup-calls >= 0", option="--budget-s")
        if self.min_samples < P99_MIN_SAMPLES:
            raise BadOptionError(
                f"--min-samples {self.min_samples} is too few: the profile reports a p99, which needs {P99_MIN_SAMPLES} timed calls",
                option="--min-samples",
            )

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
    cpu_limit: str = ""
    processes: int = 0
    windows: int = 0
    window_spread: float = math.nan
    process_spread: float = math.nan
    cpu_share: float = math.nan
    runqueue_wait: float = math.nan
    other_load: float = math.nan
    steal: float = math.nan
    cpu_pressure: float = math.nan
    throttled_s: float = 0.0
    contended_windows: int = 0
    sanity: str = ""
    samples_ms: list[float] = field(default_factory=list)
    process_samples: list[int] = field(default_factory=list)

    def with_samples(self, per_process: list[list[float]]) -> CellRecord:
        """Fill the latency statistics from the calls of every process (ms), pooled."""
        import numpy as np  # here, not at the top: the CLI reads this module's defaults for --help

        values = np.concatenate([np.asarray(s, dtype=float) for s in per_process])
        p50, p90, p95, p99 = np.percentile(values, [50, 90, 95, 99])
        self.p50_ms, self.p90_ms, self.p95_ms, self.p99_ms = float(p50), float(p90), float(p95), float(p99)
        self.mean_ms = float(values.mean())
        self.std_ms = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        self.min_ms, self.max_ms = float(values.min()), float(values.max())
        self.samples = len(values)
        self.throughput_ips = self.batch_size * 1000.0 / self.mean_ms
        self.samples_ms = values.tolist()
        self.process_samples = [len(s) for s in per_process]
        self.processes = len(per_process)
        return self

    def to_row(self) -> dict[str, Any]:
        return asdict(self)


def time_window(
    call: Callable[[], Any], timer: Callable[[Callable[[], Any]], float], min_calls: int, min_s: float,
    should_stop: Callable[[float], bool] | None = None,
) -> list[float]:
    """Time `call` until both `min_calls` calls and `min_s` seconds of calls are done; ms per call.

    `should_stop(timed_ms)`, asked after every call, can end the window early (a worker
    that finds it is sharing its CPUs stops measuring the neighbours).
    """
    times_ms: list[float] = []
    timed_ms = 0.0
    while len(times_ms) < min_calls or timed_ms < min_s * 1000.0:
        times_ms.append(timer(call))
        timed_ms += times_ms[-1]
        if should_stop is not None and should_stop(timed_ms):
            break
    return times_ms


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


def failure_text(error: BaseException) -> str:
    """`Type: first line of the message`, at most 500 characters, for a cell's `error`."""
    message = str(error).strip()
    return f"{type(error).__name__}: {message.splitlines()[0] if message else ''}"[:500]
