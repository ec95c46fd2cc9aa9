"""Measure one column of cells (one device and core count) as a serving replica runs them.

Inside one worker process (`measure_column`):
1. **Warm every batch size first**, in increasing order (which also finds the batch that
   runs out of memory and each batch's peak memory), so no cell is timed in a colder
   state than a serving replica is ever in: a replica has run every batch size.
2. **Interleave.** Rounds visit the cells in a seeded, shuffled order; each visit times
   one window of the cell (`time_window`: at least `window_calls` calls and `window_s`
   seconds). Drift of the machine or of the process then spreads over every cell
   instead of landing on whichever cell ran at that time.
3. **Contention.** Around every window the worker measures what it got of its CPUs
   (`contention.Usage`; a long window is also checked every 250 ms of calls and ends
   early once it is plainly contended). A contended window is thrown away and measured again later, at
   most `max_backoffs` times per cell; before that the worker backs off (sleeps 0.2 s,
   doubling up to 1.6 s, at most `BACKOFF_TOTAL_S` per process, so a machine that stays
   busy costs seconds, not minutes). After that the next window is kept, and if the
   worker still lost more than the threshold the cell stops there, `contended`: on a
   machine that stays busy, more calls would only measure the neighbours.
4. **Stop.** A cell is done once it has its share of the calls and of the budget and its
   last k window medians agree (`stability.Stability`); or, after `max_windows`
   windows, it is `unstable`.

The parent runs several such processes per column, one after another, and pools their
calls into one record per cell (`pool`).
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from themis.profiler.contention import CONTENTION_THRESHOLD, Probe, Usage
from themis.profiler.measure import P99_MIN_SAMPLES, CellRecord, failure_text, is_out_of_memory, time_window
from themis.profiler.stability import Stability, window_spread

BACKOFF_S = 0.2
BACKOFF_CAP_S = 1.6
BACKOFF_TOTAL_S = 4.0
MAX_BACKOFFS = 3
"""Contended windows thrown away per cell and process before its windows are kept anyway."""

Emit = Callable[..., None]


@dataclass(frozen=True)
class WorkerPlan:
    """One worker process's share of the work: per cell, its calls and seconds, and the rules."""

    budget_s: float  # timed seconds per cell in this process
    min_samples: int  # timed calls per cell in this process
    warmup: int
    stability: Stability
    contention_threshold: float = CONTENTION_THRESHOLD
    max_backoffs: int = MAX_BACKOFFS
    seed: int = 0

    @property
    def window_s(self) -> float:
        """k windows fill the budget."""
        return self.budget_s / self.stability.k

    @property
    def window_calls(self) -> int:
        """k windows hold the calls needed (and at least the stability's window size)."""
        return max(self.stability.window_calls, math.ceil(self.min_samples / self.stability.k))

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "stability": self.stability.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkerPlan:
        return cls(**{**data, "stability": Stability.from_dict(data["stability"])})


@dataclass
class CellRun:
    """One cell as one worker process measured it."""

    batch_size: int
    samples_ms: list[float] = field(default_factory=list)
    window_medians: list[float] = field(default_factory=list)
    timed_s: float = 0.0
    usage: Usage = field(default_factory=Usage.none)
    contended_windows: int = 0
    peak_memory_mb: float = math.nan
    status: str = "ok"  # ok | unstable | contended | oom | error
    error: str = ""

    def accept(self, times_ms: list[float], usage: Usage) -> None:
        self.samples_ms.extend(times_ms)
        self.window_medians.append(statistics.median(times_ms))
        self.timed_s += sum(times_ms) / 1000.0
        self.usage = self.usage + usage

    def finish_if_done(self, plan: WorkerPlan) -> bool:
        """Set the outcome and return True once the cell needs no more windows."""
        stability = plan.stability
        enough = len(self.samples_ms) >= plan.min_samples and self.timed_s >= plan.budget_s
        windows = len(self.window_medians)
        settled = windows >= (stability.k if stability.enabled else 1) and stability.is_stable(self.window_medians)
        # Backed off as often as allowed and still contended: more calls would only measure the neighbours.
        gave_up = self.contended_windows >= plan.max_backoffs and self.usage.is_contended(plan.contention_threshold)
        if not (gave_up or (enough and settled)) and windows < stability.max_windows:
            return False
        if self.usage.is_contended(plan.contention_threshold):
            self.status = "contended"
            self.error = f"contended: the worker {self.usage.describe()}, after {self.contended_windows} window(s) measured again"
        elif not (enough and settled):
            self.status = "unstable"
            self.error = (
                f"window medians still {self.spread(stability):.1%} apart after {windows} windows "
                f"(tolerance {stability.tolerance:.0%}, {len(self.samples_ms)} calls)"
            )
        return True

    def spread(self, stability: Stability) -> float:
        """Relative spread of the last k window medians (all of them when fewer)."""
        return window_spread(self.window_medians[-stability.k:])

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "usage": self.usage.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CellRun:
        return cls(**{**data, "usage": Usage.from_dict(data["usage"])})


def measure_column(
    module: Callable[[Any], Any],
    make_input: Callable[[int], Any],
    warm_batch_sizes: list[int],
    timed_batch_sizes: list[int],
    plan: WorkerPlan,
    *,
    timer: Callable[[Callable[[], Any]], float],
    probe: Probe,
    reset_memory: Callable[[], None],
    peak_memory_mb: Callable[[], float],
    emit: Emit,
    sleep: Callable[[float], None] = time.sleep,
) -> list[CellRun]:
    """Warm every batch size, then time the timed ones interleaved; emit `cell` as each finishes.

    A batch size that fails while warming is reported (`oom` or `error`); after an
    out-of-memory batch no larger batch size is warmed or timed.
    """
    inputs: dict[int, Any] = {}
    finished: list[CellRun] = []
    peaks: dict[int, float] = {}
    for batch_size in sorted(set(warm_batch_sizes) | set(timed_batch_sizes)):
        emit("warming", batch_size=batch_size)
        try:
            batch = make_input(batch_size)
            reset_memory()
            for _ in range(max(1, plan.warmup)):
                module(batch)
            peaks[batch_size], inputs[batch_size] = peak_memory_mb(), batch
        except Exception as error:  # the model's failure is a measured outcome, not a themis bug
            failed = CellRun(batch_size, status="oom" if is_out_of_memory(error) else "error", error=failure_text(error))
            if batch_size in timed_batch_sizes:
                finished.append(failed)
                emit("cell", run=failed.to_dict())
            if failed.status == "oom":
                break
    emit("timing")
    active = [CellRun(b, peak_memory_mb=peaks[b]) for b in timed_batch_sizes if b in inputs]
    rng, backoffs, slept_s = random.Random(plan.seed), 0, 0.0
    while active:
        for run in rng.sample(active, len(active)):
            emit("window", batch_size=run.batch_size)
            batch = inputs[run.batch_size]
            check = _ContentionCheck(probe, plan.contention_threshold)
            try:
                times_ms = time_window(lambda: module(batch), timer, plan.window_calls, plan.window_s, should_stop=check)
            except Exception as error:  # e.g. out of memory only now, from fragmentation
                run.status, run.error = ("oom" if is_out_of_memory(error) else "error"), failure_text(error)
                _finish(run, active, finished, emit)
                continue
            usage = probe.usage(check.before, probe.snapshot())
            if usage.is_contended(plan.contention_threshold) and run.contended_windows < plan.max_backoffs:
                run.contended_windows += 1
                backoffs += 1
                pause_s = min(BACKOFF_CAP_S, BACKOFF_S * 2 ** (backoffs - 1), BACKOFF_TOTAL_S - slept_s)
                if pause_s > 0:
                    sleep(pause_s)
                    slept_s += pause_s
                continue
            backoffs = 0
            run.accept(times_ms, usage)
            if run.finish_if_done(plan):
                _finish(run, active, finished, emit)
    return finished


class _ContentionCheck:
    """Ends a long window early once it is plainly contended (checked every `CHECK_MS` of calls),
    so a thrown-away window costs a fraction of a second, not a window of slow calls."""

    CHECK_MS = 250.0

    def __init__(self, probe: Probe, threshold: float) -> None:
        self.probe, self.threshold, self.next_ms = probe, threshold, self.CHECK_MS
        self.before = probe.snapshot()

    def __call__(self, timed_ms: float) -> bool:
        if timed_ms < self.next_ms:
            return False
        self.next_ms = timed_ms + self.CHECK_MS
        return self.probe.usage(self.before, self.probe.snapshot()).is_contended(self.threshold)


def _finish(run: CellRun, active: list[CellRun], finished: list[CellRun], emit: Emit) -> None:
    active.remove(run)
    finished.append(run)
    emit("cell", run=run.to_dict())


def pool(record: CellRecord, runs: list[CellRun], stability: Stability) -> CellRecord:
    """One record from the runs of every process: pooled calls, spreads, contention, status.

    A failure in any process (`oom`, `error`) is the cell's outcome. Otherwise the cell
    is `contended` if any process found it so, else `unstable` if any process did or the
    pooled calls are fewer than a p99 needs, else `ok`.
    """
    failed = next((r for r in runs if r.status in ("oom", "error")), None)
    if failed is not None:
        record.status, record.error = failed.status, failed.error
        record.peak_memory_mb = failed.peak_memory_mb
        return record
    record.with_samples([r.samples_ms for r in runs])
    usage = sum((r.usage for r in runs), Usage.none())
    record.windows = sum(len(r.window_medians) for r in runs)
    record.window_spread = max(r.spread(stability) for r in runs)
    record.process_spread = window_spread([statistics.median(r.samples_ms) for r in runs]) if len(runs) > 1 else 0.0
    record.cpu_share, record.runqueue_wait, record.other_load = usage.cpu_share, usage.runqueue_wait, usage.other_load
    record.steal, record.cpu_pressure, record.throttled_s = usage.steal, usage.cpu_pressure, usage.throttled_s
    record.contended_windows = sum(r.contended_windows for r in runs)
    record.peak_memory_mb = max(r.peak_memory_mb for r in runs)
    for status in ("contended", "unstable"):
        flagged = [(i, r) for i, r in enumerate(runs) if r.status == status]
        if flagged:
            record.status = status
            record.error = "; ".join(f"process {i + 1}: {r.error}" for i, r in flagged)[:500]
            return record
    if record.samples < P99_MIN_SAMPLES:
        record.status = "unstable"
        record.error = f"only {record.samples} timed calls; a p99 needs {P99_MIN_SAMPLES}"
    return record
