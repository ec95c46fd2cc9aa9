"""One column in one worker: warm everything first, shuffled interleaved windows, stop rules,
contention with back-off, failures; and pooling the processes' runs into one record."""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from themis.profiler.column import MAX_BACKOFFS, CellRun, WorkerPlan, measure_column, pool
from themis.profiler.contention import Probe, Usage
from themis.profiler.devices import available_cpus, cpu_device
from themis.profiler.measure import Budget, CellRecord, cpu_timer, peak_rss_mb, reset_peak_rss
from themis.profiler.models import load_model, resolve_model
from themis.profiler.run import ProfileRequest, run_worker, worker_job
from themis.profiler.stability import Stability
from themis.sample_models import SAMPLE_MODELS

NO_CONTENTION_CHECK = 1.0  # evidence is a share, never above 1: these tests judge the stop rules, not the machine


def _plan(**overrides) -> WorkerPlan:
    values = dict(budget_s=0.02, min_samples=30, warmup=1, stability=Stability(), contention_threshold=NO_CONTENTION_CHECK, seed=7)
    return WorkerPlan(**{**values, **overrides})


def _measure(module, make_input, warm, timed, plan, events=None):
    events = events if events is not None else []
    return measure_column(
        module, make_input, warm, timed, plan, timer=cpu_timer, probe=Probe(available_cpus(), threads=torch.get_num_threads()),
        reset_memory=reset_peak_rss, peak_memory_mb=peak_rss_mb, emit=lambda event, **data: events.append((event, data)),
        sleep=lambda _: None,
    )


@pytest.fixture
def one_thread():
    """torch on one thread, as a 1-core worker runs (two threads on a busy 2-CPU machine stall each other)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_every_batch_size_is_warmed_before_any_is_timed_and_windows_are_shuffled(one_thread) -> None:
    module = SAMPLE_MODELS["small_cnn"].build()
    events: list = []
    with torch.inference_mode():
        runs = _measure(module, lambda b: torch.randn(b, 3, 32, 32), [1, 2, 4, 8, 16], [1, 2, 4, 8], _plan(), events)
    names = [e for e, _ in events]
    first_window = names.index("window")
    assert names[:first_window] == ["warming"] * 5 + ["timing"]
    assert [d["batch_size"] for e, d in events[:5]] == [1, 2, 4, 8, 16]  # 16 is warmed, never timed
    windows = [d["batch_size"] for e, d in events if e == "window"]
    assert windows[:4] == random.Random(7).sample([1, 2, 4, 8], 4)  # round one: the seeded shuffle
    assert set(windows) == {1, 2, 4, 8} and windows != sorted(windows)
    assert sorted(r.batch_size for r in runs) == [1, 2, 4, 8]
    for run in runs:
        assert run.status in ("ok", "unstable") and run.peak_memory_mb > 10
        assert len(run.samples_ms) >= 30 and run.timed_s >= 0.02 and len(run.window_medians) >= 3
        assert run.usage.windows == len(run.window_medians) and 0 < run.usage.cpu_share <= 1.5


def test_a_steady_cell_stops_after_k_agreeing_windows() -> None:
    runs = _measure(lambda _: time.sleep(0.001), lambda b: b, [1], [1], _plan(stability=Stability(k=3, tolerance=0.5)))
    (run,) = runs
    assert (run.status, len(run.window_medians), run.error) == ("ok", 3, "")
    assert len(run.samples_ms) >= 30 and run.spread(Stability(k=3)) <= 0.5


def test_a_drifting_cell_is_unstable_after_max_windows() -> None:
    calls = itertools.count()
    slow_down = lambda _: time.sleep(0.0002 * 1.25 ** (next(calls) // 10))  # noqa: E731 - every window 25% slower
    runs = _measure(slow_down, lambda b: b, [1], [1], _plan(stability=Stability(k=3, tolerance=0.05, max_windows=5)))
    (run,) = runs
    assert run.status == "unstable" and len(run.window_medians) == 5
    assert run.error.startswith("window medians still") and "tolerance 5%" in run.error


def test_stability_off_stops_on_budget_and_calls_alone() -> None:
    calls = itertools.count()
    drifting = lambda _: time.sleep(0.0002 * 1.25 ** (next(calls) // 10))  # noqa: E731
    (run,) = _measure(drifting, lambda b: b, [1], [1], _plan(stability=Stability(enabled=False)))
    assert run.status == "ok" and len(run.window_medians) <= 3


def test_a_batch_that_runs_out_of_memory_while_warming_stops_the_larger_ones(factory_dir: Path, one_thread) -> None:
    module, make_input = load_model(resolve_model("hungry_models:hungry", (8,)), "float32", "cpu")
    events: list = []
    with torch.inference_mode():
        runs = _measure(module, make_input, [1, 2, 4, 8], [1, 2, 4, 8], _plan(), events)
    by_batch = {r.batch_size: r for r in runs}
    assert sorted(by_batch) == [1, 2, 4] and by_batch[4].status == "oom" and "alloc" in by_batch[4].error
    assert 8 not in [d.get("batch_size") for _, d in events]  # never warmed, never timed


@pytest.mark.slow
def test_a_worker_sharing_its_cpu_with_a_spinner_is_contended_after_backing_off(tmp_path: Path) -> None:
    cpu = available_cpus()[0]
    spinner = subprocess.Popen([sys.executable, "-c", f"import os; os.sched_setaffinity(0, [{cpu}])\nwhile True: pass"])
    try:
        time.sleep(0.2)
        request = ProfileRequest(resolve_model("small_cnn"), [cpu_device()], [1], [1, 4], "float32",
                                 Budget(budget_s=0.2, min_samples=100, warmup=1), out=tmp_path / "x.parquet", processes=1)
        events: list = []
        code, _ = run_worker(worker_job(request, cpu_device(), 1, [1, 4]), events.append)
    finally:
        spinner.kill()
        spinner.wait()
    assert code == 0
    runs = [CellRun.from_dict(e["run"]) for e in events if e["event"] == "cell"]
    assert len(runs) == 2
    for run in runs:  # the spinner holds half of the worker's only CPU, so it waits about half of its runnable time
        assert run.status == "contended" and run.contended_windows == MAX_BACKOFFS
        assert run.usage.runqueue_wait > 0.25 and "waited" in run.error


def _run(batch: int, samples: list[float], status: str = "ok", error: str = "", wait_s: float = 0.0) -> CellRun:
    usage = Usage(wall_s=1.0, cpu_s=0.9, run_s=0.9, wait_s=wait_s, others_s=0.05, threads=1, cpus=1)
    medians = [float(np.median(samples[i::3])) for i in range(3)]
    return CellRun(batch, samples_ms=samples, window_medians=medians, timed_s=sum(samples) / 1000, usage=usage,
                   peak_memory_mb=100.0 + len(samples), status=status, error=error)


def test_pool_concatenates_the_processes_and_measures_their_spread() -> None:
    record = CellRecord("m", "cpu", "c", "", 2, 4, "float32", "8")
    runs = [_run(4, [10.0] * 40), _run(4, [11.0] * 40), _run(4, [12.0] * 40)]
    pooled = pool(record, runs, Stability())
    assert (pooled.status, pooled.samples, pooled.processes, pooled.process_samples) == ("ok", 120, 3, [40, 40, 40])
    assert pooled.p50_ms == 11.0 and pooled.process_spread == pytest.approx(2 / 11)
    assert pooled.windows == 9 and pooled.window_spread == 0.0 and pooled.peak_memory_mb == 140.0
    assert pooled.cpu_share == pytest.approx(0.9) and pooled.other_load == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [(["ok", "ok"], "ok"), (["ok", "unstable"], "unstable"), (["unstable", "contended"], "contended"),
     (["contended", "oom"], "oom"), (["error", "ok"], "error")],
)
def test_pool_status_takes_the_worst_process(statuses: list[str], expected: str) -> None:
    runs = [_run(1, [1.0] * 60, status=s, error=f"why {s}") for s in statuses]
    pooled = pool(CellRecord("m", "cpu", "c", "", 1, 1, "float32", "8"), runs, Stability())
    assert pooled.status == expected
    assert (pooled.error == "") == (expected == "ok") and (expected == "ok" or f"why {expected}" in pooled.error)


def test_pool_marks_too_few_calls_for_a_p99_unstable() -> None:
    pooled = pool(CellRecord("m", "cpu", "c", "", 1, 1, "float32", "8"), [_run(1, [1.0] * 40), _run(1, [1.0] * 40)], Stability())
    assert pooled.status == "unstable" and "a p99 needs 100" in pooled.error and not math.isnan(pooled.p99_ms)


def test_cell_runs_survive_the_json_pipe() -> None:
    run = _run(2, [1.0, 2.0, 3.0], wait_s=0.2)
    again = CellRun.from_dict(json.loads(json.dumps(run.to_dict())))
    assert again == run and again.usage.runqueue_wait == pytest.approx(0.2 / 1.1)


@pytest.mark.slow
def test_a_long_contended_window_ends_early_and_the_cell_stops_contended() -> None:
    """This process pinned to one CPU with a spinner there: every window is contended, and a
    window of 12 calls of 30 ms of CPU each is cut after about 250 ms instead of running on."""
    cpu = available_cpus()[0]
    affinity = os.sched_getaffinity(0)
    spinner = subprocess.Popen([sys.executable, "-c", f"import os; os.sched_setaffinity(0, [{cpu}])\nwhile True: pass"])
    os.sched_setaffinity(0, [cpu])
    try:
        time.sleep(0.2)

        def busy(_) -> None:
            deadline = time.thread_time() + 0.03  # 30 ms of this thread's own CPU time
            while time.thread_time() < deadline:
                pass

        plan = _plan(contention_threshold=0.10, budget_s=3.0, min_samples=36)  # windows of 12 calls, 1 s
        events: list = []
        (run,) = measure_column(busy, lambda b: b, [1], [1], plan, timer=cpu_timer, probe=Probe([cpu], threads=1),
                                reset_memory=reset_peak_rss, peak_memory_mb=peak_rss_mb,
                                emit=lambda event, **data: events.append(event), sleep=lambda _: None)
    finally:
        os.sched_setaffinity(0, affinity)
        spinner.kill()
        spinner.wait()
    assert run.status == "contended" and run.contended_windows == MAX_BACKOFFS
    assert events.count("window") == MAX_BACKOFFS + 1 and len(run.window_medians) == 1
    assert len(run.samples_ms) < plan.window_calls  # the kept window was cut short too
