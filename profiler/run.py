"""Run a whole profile: plan the cells, run the worker processes of each column, pool, save.

A column is one device and core count. Its cells are measured by `request.processes`
fresh worker processes, one after another (`themis.profiler.column` says what each does);
their calls are pooled into one row per cell, so the percentiles the planner reads carry
the spread between processes as well as within one. The parent never imports torch. It
rewrites the Parquet file atomically after every finished cell, so Ctrl-C or `kill -9`
keeps every finished cell and `--resume` measures only the rest (and the cells that came
out `error`, `unstable` or `contended`). A batch size that runs out of memory skips the
larger ones on that device. Once every column is measured, the cross-cell sanity checks
run (`themis.profiler.sanity`) and the cells they flag are measured once more.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from themis.common.atomic import require_writable
from themis.profiler.cgroups import CpuController, CpuGroup, find_cpu_controller
from themis.profiler.column import CellRun, WorkerPlan, pool
from themis.profiler.contention import CONTENTION_THRESHOLD
from themis.profiler.devices import Device, available_cpus, environment
from themis.profiler.errors import BadOptionError, ModelLoadError, ProfileFileError
from themis.profiler.grid import Cell, build_grid, finished_keys, missing_cells
from themis.profiler.measure import Budget, CellRecord
from themis.profiler.models import ModelSpec
from themis.profiler.sanity import find_anomalies
from themis.profiler.stability import Stability
from themis.profiler.table import (
    CELL_KEY,
    COLUMNS,
    KIND,
    MEASURED_STATUSES,
    PROFILE_SCHEMA_VERSION,
    profile_rows,
    read_profile,
    summary_frame,
    write_profile,
)

CPU_LIMITS = ("pin", "quota")


@dataclass(frozen=True)
class ProfileRequest:
    """Everything `themis profile` was asked to do."""

    model: ModelSpec
    devices: list[Device]
    core_counts: list[int]
    batch_sizes: list[int]
    dtype: str
    budget: Budget
    out: Path
    resume: bool = False
    overwrite: bool = False
    processes: int = 3
    stability: Stability = field(default_factory=Stability)
    cpu_limit: str = "pin"
    seed: int = 0
    contention_threshold: float = CONTENTION_THRESHOLD

    def validate(self) -> None:
        self.budget.validate()
        if self.resume and self.overwrite:
            raise BadOptionError("--resume keeps the cells in --out and --overwrite discards them: pass one", option="--overwrite")
        if self.processes < 1:
            raise BadOptionError("--processes must be at least 1", option="--processes")
        if self.cpu_limit not in CPU_LIMITS:
            raise BadOptionError(f"unknown CPU limit {self.cpu_limit!r}; use pin or quota", option="--cpu-limit")

    def measurement(self) -> dict[str, Any]:
        """How the cells were measured: the profile footer's `themis.measurement`."""
        return {
            "cpu_limit": self.cpu_limit, "processes": self.processes, "budget": self.budget.to_dict(),
            "stability": self.stability.to_dict(), "contention_threshold": self.contention_threshold, "seed": self.seed,
        }


@dataclass
class ProfileResult:
    """A stored profile (what `profile` wrote or `profile show` read) plus this run's counts."""

    frame: pd.DataFrame
    environment: dict[str, Any]
    path: Path | None = None
    measured_cells: int = 0  # cells this run wrote (an `oom` cell skipped after a smaller OOM counts)
    kept_cells: int = 0  # cells of this request already finished in the file (--resume)
    remeasured_cells: int = 0  # cells measured again because the sanity checks flagged them

    def status_counts(self) -> dict[str, int]:
        """Cells per status, and `flagged`: cells a sanity check still flags."""
        counts = {str(k): int(v) for k, v in self.frame["status"].value_counts().items()}
        sanity = self.frame["sanity"].fillna("")
        counts["flagged"] = int(((sanity != "") & (sanity != "remeasured")).sum())
        return counts

    def summary_line(self) -> str:
        """How far to trust the profile, and what to do about the cells that are not `ok`."""
        counts = self.status_counts()
        cells = len(self.frame)
        shown = ", ".join(f"{counts[s]} {s}" for s in ("ok", "unstable", "contended", "oom", "error") if counts.get(s))
        text = f"{cells} cells: {shown}" if cells else "no cells"
        if counts.get("flagged"):
            text += f"; {counts['flagged']} still flagged by the sanity checks after measuring them again (see `sanity`)"
        if counts.get("unstable") or counts.get("contended"):
            text += (
                ". The planner does not trust unstable or contended cells: re-run on an idle machine with --resume "
                "(it measures only those again), or pass --allow-unstable to plan"
            )
        return text

    def to_dict(self) -> dict[str, Any]:
        cells = json.loads(summary_frame(self.frame).to_json(orient="records"))  # NaN -> null
        return {
            "schema_version": PROFILE_SCHEMA_VERSION, "kind": KIND, "path": str(self.path) if self.path else None,
            "environment": self.environment, "measurement": self.frame.attrs.get("measurement", {}),
            "measured_cells": self.measured_cells, "kept_cells": self.kept_cells, "remeasured_cells": self.remeasured_cells,
            "status_counts": self.status_counts() if len(self.frame) else {}, "summary": self.summary_line(), "cells": cells,
        }

    def to_frame(self) -> pd.DataFrame:
        return summary_frame(self.frame)


class Progress:
    """Callbacks the run reports to; this base stays silent (pipes, CI, tests).

    A step is one cell timed by one worker process, so a run has cells x processes steps
    (plus those of cells measured again).
    """

    def add_steps(self, steps: int) -> None: ...

    def step_started(self, label: str) -> None: ...

    def step_finished(self) -> None: ...


@dataclass
class _Store:
    """The rows of the profile being written, rewritten to disk after every change."""

    path: Path
    environment: dict[str, Any]
    measurement: dict[str, Any]
    rows: dict[tuple, dict[str, Any]] = field(default_factory=dict)
    resumed: bool = False

    def add(self, row: dict[str, Any]) -> None:
        self.rows[tuple(row[name] for name in CELL_KEY)] = row
        if self.resumed or self.measured():  # a file of failed cells only is never written
            self.save()

    def measured(self) -> bool:
        """Whether any cell was measured (a cell that ran out of memory counts: it says something)."""
        return any(row["status"] != "error" for row in self.rows.values())

    def save(self) -> None:
        write_profile(self.path, sorted(self.rows.values(), key=_row_order), self.environment, self.measurement)

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(sorted(self.rows.values(), key=_row_order), columns=list(COLUMNS))
        frame.attrs["measurement"] = self.measurement
        return frame


def _row_order(row: dict[str, Any]) -> tuple:
    return (row["model"], row["device_kind"], row["device_id"], row["dtype"], row["input_shape"], row["cores"], row["batch_size"])


def run_profile(request: ProfileRequest, progress: Progress | None = None) -> ProfileResult:
    """Measure every missing cell of the request into `request.out`; return the stored profile."""
    request.validate()
    progress = progress or Progress()
    store = _open_store(request)
    controller = find_cpu_controller() if request.cpu_limit == "quota" and any(d.kind == "cpu" for d in request.devices) else None
    require_writable(request.out, "--out")  # fails early, before any measuring; the file itself appears with the first measured cell
    spec = request.model
    cells = build_grid(request.devices, request.core_counts, request.batch_sizes)
    todo = missing_cells(cells, finished_keys(store.frame()), spec.name, request.dtype, spec.input_shape_text)
    progress.add_steps(len(todo) * request.processes)
    oom_batch = _stored_oom_batches(store, request)  # (kind, device id) -> smallest batch that ran out of memory
    measured: set[tuple] = set()

    def on_row(row: dict[str, Any]) -> None:
        store.add(row)
        measured.add(tuple(row[name] for name in CELL_KEY))
        if row["status"] == "oom":
            key = (row["device_kind"], row["device_id"])
            oom_batch[key] = min(oom_batch.get(key, sys.maxsize), row["batch_size"])

    runner = _ColumnRunner(request, controller, progress, on_row)
    for device, cores in dict.fromkeys((c.device, c.cores) for c in todo):
        column = [c.batch_size for c in todo if c.device == device and c.cores == cores]
        limit = oom_batch.get((device.kind, device.device_id), sys.maxsize)
        runner.measure(device, cores, [b for b in column if b < limit], oom_limit=limit)
        for batch_size in column:
            if batch_size >= limit:
                on_row(_skipped_row(request, Cell(device, cores, batch_size), limit))
    remeasured = _check_sanity(request, store, measured, runner)
    if not store.resumed and not store.measured():
        errors = [row["error"] for row in store.rows.values() if row.get("error")]
        why = f": {errors[0]}" if errors else ""
        raise ModelLoadError(f"no cell could be measured ({len(store.rows)} failed){why}; nothing was written", option="MODEL")
    return ProfileResult(
        store.frame(), store.environment, request.out, measured_cells=len(todo), kept_cells=len(cells) - len(todo),
        remeasured_cells=remeasured,
    )


class _ColumnRunner:
    """Runs the worker processes of one column and turns their cells into rows."""

    def __init__(self, request: ProfileRequest, controller: CpuController | None, progress: Progress,
                 on_row: Callable[[dict[str, Any]], None]) -> None:
        self.request, self.controller, self.progress, self.on_row = request, controller, progress, on_row

    def measure(self, device: Device, cores: int, batch_sizes: list[int], *, oom_limit: int = sys.maxsize) -> None:
        """Measure `batch_sizes` at `cores` on `device` in `request.processes` fresh workers (the
        request's other batch sizes below `oom_limit` are warmed too) and write their rows."""
        request = self.request
        warm = [b for b in request.batch_sizes if b < oom_limit]
        runs: dict[int, list[CellRun]] = {b: [] for b in batch_sizes}
        failed: dict[int, CellRun] = {}
        with self._cpu_group(device, cores) as group:
            for index in range(request.processes):
                last = index == request.processes - 1
                todo = [b for b in batch_sizes if b not in failed and b < _oom_limit(failed, oom_limit)]
                self._run_process(device, cores, index, todo, [b for b in warm if b < _oom_limit(failed, oom_limit)], group,
                                  lambda run, last=last: self._on_run(device, cores, run, runs, failed, last))
        limit = _oom_limit(failed, oom_limit)
        for batch_size in batch_sizes:
            if batch_size in failed:
                continue
            if batch_size >= limit:
                self.on_row(_skipped_row(request, Cell(device, cores, batch_size), limit))

    def _on_run(self, device: Device, cores: int, run: CellRun, runs: dict[int, list[CellRun]], failed: dict[int, CellRun],
                last: bool) -> None:
        self.progress.step_finished()
        record = _record(self.request, Cell(device, cores, run.batch_size))
        if run.status in ("oom", "error"):
            failed[run.batch_size] = run
            self.on_row(pool(record, [run], self.request.stability).to_row())
            return
        runs[run.batch_size].append(run)
        if last:
            self.on_row(pool(record, runs[run.batch_size], self.request.stability).to_row())

    def _run_process(self, device: Device, cores: int, index: int, batch_sizes: list[int], warm: list[int],
                     group: CpuGroup | None, on_run: Callable[[CellRun], None]) -> None:
        """One worker process of the column; a worker that dies is started again for the cells left.

        A worker that dies mid-cell (e.g. the kernel's OOM killer) gets that cell recorded
        as `oom` (SIGKILL) or `error`, and a fresh worker carries on with the rest.
        """
        remaining = list(batch_sizes)
        while remaining:
            done: set[int] = set()
            current: list[int] = []
            load_errors: list[str] = []

            def on_event(event: dict[str, Any]) -> None:
                kind = event["event"]
                if kind in ("warming", "window"):
                    current[:] = [event["batch_size"]]
                    if kind == "window":
                        self.progress.step_started(f"{_where(device, cores)}, batch {event['batch_size']}, "
                                                   f"process {index + 1}/{self.request.processes}")
                elif kind == "cell":
                    run = CellRun.from_dict(event["run"])
                    done.add(run.batch_size)
                    on_run(run)
                elif kind == "load_error":
                    load_errors.append(event["message"])

            job = worker_job(self.request, device, cores, remaining, warm_batch_sizes=warm, process_index=index, group=group)
            code, stderr_tail = run_worker(job, on_event, group)
            if load_errors:
                raise ModelLoadError(f"cannot load the model: {load_errors[0]}", option="MODEL")
            remaining = [b for b in remaining if b not in done]
            if code == 0 or not remaining:
                return
            dead = current[0] if current else remaining[0]  # the batch the worker died on
            killed = code == -9
            message = "worker was killed (SIGKILL), probably out of memory" if killed else f"worker exited with code {code}: {stderr_tail}"
            if dead in remaining:  # (it may have died warming a batch size that is only warmed, e.g. one kept on --resume)
                on_run(CellRun(dead, status="oom" if killed else "error", error=message))
            remaining = [b for b in remaining if b != dead and not (killed and b > dead)]
            warm = [b for b in warm if b != dead and not (killed and b > dead)]

    @contextlib.contextmanager
    def _cpu_group(self, device: Device, cores: int) -> Iterator[CpuGroup | None]:
        """Under `--cpu-limit quota`, a cgroup with a CFS quota of `cores` for the column's workers."""
        if self.controller is None or device.kind != "cpu":
            yield None
            return
        try:
            group = CpuGroup.create(self.controller, f"{cores}c")
            group.set_cpu_quota(cores)
        except OSError as error:
            raise BadOptionError(f"cannot create a cgroup with a CPU quota in {self.controller.parent}: {error.strerror}",
                                 option="--cpu-limit") from None
        with group:
            yield group


def _oom_limit(failed: dict[int, CellRun], limit: int) -> int:
    return min([limit, *(b for b, run in failed.items() if run.status == "oom")])


def _where(device: Device, cores: int) -> str:
    return f"{cores} core{'s' if cores > 1 else ''}" if device.kind == "cpu" else device.label


def _check_sanity(request: ProfileRequest, store: _Store, measured: set[tuple], runner: _ColumnRunner) -> int:
    """Flag implausible cells, measure the ones of this run again once, record the `sanity` flag.

    Returns how many cells were measured again.
    """
    spec = request.model
    remeasured: set[tuple] = set()
    for device in request.devices:
        def block() -> list[dict[str, Any]]:
            return [r for r in store.rows.values() if (r["model"], r["device_kind"], r["device_id"], r["dtype"], r["input_shape"])
                    == (spec.name, device.kind, device.device_id, request.dtype, spec.input_shape_text) and r["status"] in MEASURED_STATUSES]

        suspects = [r for r in block() if (r["cores"], r["batch_size"]) in find_anomalies(block())]
        # A contended cell is already explained (and not trusted); measuring it again on the same busy machine tells nothing new.
        again = [r for r in suspects if tuple(r[n] for n in CELL_KEY) in measured and r["status"] != "contended"]
        runner.progress.add_steps(len(again) * request.processes)
        for cores in sorted({r["cores"] for r in again}):
            runner.measure(device, cores, sorted(r["batch_size"] for r in again if r["cores"] == cores))
        remeasured |= {tuple(r[n] for n in CELL_KEY) for r in again}
        flags = find_anomalies(block())
        for row in block():
            key = tuple(row[n] for n in CELL_KEY)
            flag = ",".join(sorted(flags.get((row["cores"], row["batch_size"]), ())))
            flag = flag or ("remeasured" if key in remeasured or row.get("sanity") == "remeasured" else "")
            if flag != row.get("sanity", ""):
                store.add({**row, "sanity": flag})
    return len(remeasured)


def _stored_oom_batches(store: _Store, request: ProfileRequest) -> dict[tuple[str, str], int]:
    """On --resume, the out-of-memory batch sizes already in the file still skip larger ones."""
    spec, oom_batch = request.model, {}
    for row in store.rows.values():
        same = (row["model"], row["dtype"], row["input_shape"]) == (spec.name, request.dtype, spec.input_shape_text)
        if same and row["status"] == "oom":
            key = (row["device_kind"], row["device_id"])
            oom_batch[key] = min(oom_batch.get(key, sys.maxsize), int(row["batch_size"]))
    return oom_batch


def _open_store(request: ProfileRequest) -> _Store:
    out = request.out
    if out.suffix.lower() != ".parquet":
        raise BadOptionError(f"a profile is written as Parquet; use a .parquet file, not {out.name!r}", option="--out")
    fresh = _Store(out, environment(request.devices), request.measurement())
    if not out.exists():
        return fresh
    if not request.resume:
        if request.overwrite:
            return fresh
        raise BadOptionError(f"{out} exists; pass --resume to carry on measuring it or --overwrite to start again", option="--out")
    frame = read_profile(out)
    stored_models = sorted(set(frame["model"]))
    if stored_models and request.model.name not in stored_models:
        raise BadOptionError(f"{out} holds a profile of {', '.join(stored_models)}, not {request.model.name}; resume it with that model "
                             "or write a new file", option="--resume")
    stored_env = frame.attrs["environment"]
    if stored_env.get("cpu_model") and stored_env["cpu_model"] != fresh.environment["cpu_model"]:
        raise ProfileFileError(f"was measured on {stored_env['cpu_model']!r}, this machine is {fresh.environment['cpu_model']!r}; resume it there", file=out)
    stored_limit = frame.attrs["measurement"].get("cpu_limit", "pin")
    if stored_limit != request.cpu_limit:
        raise BadOptionError(f"{out} was measured with --cpu-limit {stored_limit}; resume it with the same", option="--cpu-limit")
    store = _Store(out, {**fresh.environment, "created_at": stored_env.get("created_at", fresh.environment["created_at"])},
                   fresh.measurement)
    for row in profile_rows(frame):
        store.rows[tuple(row[name] for name in CELL_KEY)] = row
    store.resumed = True
    return store


def _skipped_row(request: ProfileRequest, cell: Cell, oom_batch_size: int) -> dict[str, Any]:
    record = _record(request, cell)
    record.status = "oom"
    record.error = f"skipped: batch {oom_batch_size} already ran out of memory on this device"
    return record.to_row()


def _record(request: ProfileRequest, cell: Cell) -> CellRecord:
    return CellRecord(
        model=request.model.name, device_kind=cell.device.kind, device_name=cell.device.name, device_id=cell.device.device_id,
        cores=cell.cores, batch_size=cell.batch_size, dtype=request.dtype, input_shape=request.model.input_shape_text,
        cpu_limit=request.cpu_limit if cell.device.kind == "cpu" else "",
    )


def worker_job(
    request: ProfileRequest, device: Device, cores: int, batch_sizes: list[int], *,
    warm_batch_sizes: list[int] | None = None, process_index: int = 0, group: CpuGroup | None = None,
) -> dict[str, Any]:
    """The JSON job a worker reads on stdin: its share of each cell's budget and calls."""
    plan = WorkerPlan(
        budget_s=request.budget.budget_s / request.processes,
        min_samples=math.ceil(request.budget.min_samples / request.processes),
        warmup=request.budget.warmup, stability=request.stability, contention_threshold=request.contention_threshold,
        seed=request.seed * 1_000_003 + cores * 1_009 + process_index,
    )
    return {
        "model": request.model.to_dict(), "dtype": request.dtype, "plan": plan.to_dict(),
        "device_kind": device.kind, "device_name": device.name, "device_id": device.device_id, "mig_mode": device.mig_mode,
        "cores": cores, "cpus": available_cpus(), "cpu_limit": request.cpu_limit,
        "cgroup": str(group.path) if group else None, "cgroup_version": group.version if group else None,
        "batch_sizes": batch_sizes, "warm_batch_sizes": warm_batch_sizes if warm_batch_sizes is not None else batch_sizes,
    }


def run_worker(job: dict[str, Any], on_event: Callable[[dict[str, Any]], None], group: CpuGroup | None = None) -> tuple[int, str]:
    """Start `python -m themis.profiler.worker` (inside `group` if given), feed it `job`, pass each
    event on; return (exit code, stderr tail)."""
    env = dict(os.environ)
    if job["device_kind"] == "cuda" and not job.get("mig_mode"):  # a MIG GPU's own UUID shows no device: keep its instances
        env.update(CUDA_DEVICE_ORDER="PCI_BUS_ID", CUDA_VISIBLE_DEVICES=job["device_id"])
    with tempfile.TemporaryFile(mode="w+") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "themis.profiler.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=stderr, text=True, env=env,
        )
        try:
            if group is not None:
                group.add_process(process.pid)  # before it reads its job: it measures nothing outside the quota
            process.stdin.write(json.dumps(job))
            process.stdin.close()
            for line in process.stdout:
                on_event(json.loads(line))
            code = process.wait()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        stderr.seek(0)
        tail = " ".join(stderr.read().strip().splitlines()[-1:])
    return code, tail
