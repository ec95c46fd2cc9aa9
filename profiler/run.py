"""Run a whole profile: plan the cells, start one worker per (device, core count), save.

The parent never imports torch. It rewrites the Parquet file atomically after every cell,
so Ctrl-C or `kill -9` keeps every finished cell and `--resume` measures only the rest.
A batch size that runs out of memory skips the larger ones on that device.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from themis.common import SCHEMA_VERSION
from themis.profiler.devices import Device, available_cpus, environment
from themis.profiler.errors import BadOptionError, ModelLoadError, ProfileFileError
from themis.profiler.grid import Cell, build_grid, finished_keys, missing_cells
from themis.profiler.measure import Budget, CellRecord
from themis.profiler.models import ModelSpec
from themis.profiler.table import (
    CELL_KEY,
    COLUMNS,
    KIND,
    profile_rows,
    read_profile,
    write_profile,
)


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


@dataclass
class ProfileResult:
    """A stored profile (what `profile` wrote or `profile show` read) plus this run's counts."""

    frame: pd.DataFrame
    environment: dict[str, Any]
    path: Path | None = None
    measured_cells: int = 0  # cells this run wrote (an `oom` cell skipped after a smaller OOM counts)
    kept_cells: int = 0  # cells of this request already finished in the file (--resume)

    def to_dict(self) -> dict[str, Any]:
        cells = json.loads(self.frame.to_json(orient="records"))  # NaN -> null
        return {
            "schema_version": SCHEMA_VERSION, "kind": KIND, "path": str(self.path) if self.path else None,
            "environment": self.environment, "measured_cells": self.measured_cells, "kept_cells": self.kept_cells,
            "cells": cells,
        }

    def to_frame(self) -> pd.DataFrame:
        return self.frame


class Progress:
    """Callbacks the run reports to; this base stays silent (pipes, CI, tests)."""

    def begin(self, total_cells: int) -> None: ...

    def cell_started(self, cell: Cell) -> None: ...

    def cell_finished(self, row: dict[str, Any]) -> None: ...


@dataclass
class _Store:
    """The rows of the profile being written, rewritten to disk after every change."""

    path: Path
    environment: dict[str, Any]
    rows: dict[tuple, dict[str, Any]] = field(default_factory=dict)

    def add(self, row: dict[str, Any]) -> None:
        self.rows[tuple(row[name] for name in CELL_KEY)] = row
        self.save()

    def save(self) -> None:
        write_profile(self.path, sorted(self.rows.values(), key=_row_order), self.environment)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(sorted(self.rows.values(), key=_row_order), columns=list(COLUMNS))


def _row_order(row: dict[str, Any]) -> tuple:
    return (row["model"], row["device_kind"], row["device_id"], row["dtype"], row["input_shape"], row["cores"], row["batch_size"])


def run_profile(request: ProfileRequest, progress: Progress | None = None) -> ProfileResult:
    """Measure every missing cell of the request into `request.out`; return the stored profile."""
    progress = progress or Progress()
    store = _open_store(request)
    store.save()  # fails early, before any measuring, if --out cannot be written
    spec = request.model
    cells = build_grid(request.devices, request.core_counts, request.batch_sizes)
    todo = missing_cells(cells, finished_keys(store.frame()), spec.name, request.dtype, spec.input_shape_text)
    progress.begin(len(todo))
    oom_batch = _stored_oom_batches(store, request)  # (kind, device id) -> smallest batch that ran out of memory
    finished: set[int] = set()  # batch sizes finished in the current group

    def on_row(row: dict[str, Any]) -> None:
        store.add(row)
        finished.add(row["batch_size"])
        progress.cell_finished(row)
        if row["status"] == "oom":
            key = (row["device_kind"], row["device_id"])
            oom_batch[key] = min(oom_batch.get(key, sys.maxsize), row["batch_size"])

    for device, cores in dict.fromkeys((c.device, c.cores) for c in todo):
        group = [c for c in todo if c.device == device and c.cores == cores]
        finished.clear()
        limit = oom_batch.get((device.kind, device.device_id), sys.maxsize)
        _measure_group(request, device, cores, [c for c in group if c.batch_size < limit], progress, on_row)
        limit = oom_batch.get((device.kind, device.device_id), sys.maxsize)
        for cell in group:
            if cell.batch_size not in finished and cell.batch_size >= limit:
                on_row(_skipped_row(request, cell, limit))
    return ProfileResult(store.frame(), store.environment, request.out, measured_cells=len(todo), kept_cells=len(cells) - len(todo))


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
    fresh = _Store(out, environment(request.devices))
    if not out.exists():
        return fresh
    if not request.resume:
        if request.overwrite:
            return fresh
        raise BadOptionError(f"{out} exists; pass --resume to carry on measuring it or --overwrite to start again", option="--out")
    frame = read_profile(out)
    stored_env = frame.attrs["environment"]
    if stored_env.get("cpu_model") and stored_env["cpu_model"] != fresh.environment["cpu_model"]:
        raise ProfileFileError(f"was measured on {stored_env['cpu_model']!r}, this machine is {fresh.environment['cpu_model']!r}; resume it there", file=out)
    store = _Store(out, {**fresh.environment, "created_at": stored_env.get("created_at", fresh.environment["created_at"])})
    for row in profile_rows(frame):
        store.rows[tuple(row[name] for name in CELL_KEY)] = row
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
    )


def worker_job(request: ProfileRequest, device: Device, cores: int, batch_sizes: list[int]) -> dict[str, Any]:
    """The JSON job a worker reads on stdin."""
    return {
        "model": request.model.to_dict(), "dtype": request.dtype, "budget": request.budget.to_dict(),
        "device_kind": device.kind, "device_name": device.name, "device_id": device.device_id,
        "cores": cores, "cpus": available_cpus(), "batch_sizes": batch_sizes,
    }


def run_worker(job: dict[str, Any], on_event: Callable[[dict[str, Any]], None]) -> tuple[int, str]:
    """Start `python -m themis.profiler.worker`, feed it `job`, pass each event on; return (exit code, stderr tail)."""
    env = dict(os.environ)
    if job["device_kind"] == "cuda":
        env.update(CUDA_DEVICE_ORDER="PCI_BUS_ID", CUDA_VISIBLE_DEVICES=job["device_id"])
    with tempfile.TemporaryFile(mode="w+") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "themis.profiler.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=stderr, text=True, env=env,
        )
        try:
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


def _measure_group(
    request: ProfileRequest, device: Device, cores: int, cells: list[Cell], progress: Progress,
    on_row: Callable[[dict[str, Any]], None],
) -> None:
    """Measure a (device, cores) group in one worker, passing each row on as it arrives.

    A worker that dies mid-cell (e.g. the kernel's OOM killer) gets that cell recorded as
    `oom` (SIGKILL) or `error`, and a fresh worker carries on with the rest.
    """
    remaining = [c.batch_size for c in cells]
    while remaining:
        rows: list[dict[str, Any]] = []
        load_errors: list[str] = []

        def on_event(event: dict[str, Any]) -> None:
            if event["event"] == "start":
                progress.cell_started(Cell(device, cores, event["batch_size"]))
            elif event["event"] == "cell":
                rows.append(event["row"])
                on_row(event["row"])
            elif event["event"] == "load_error":
                load_errors.append(event["message"])

        code, stderr_tail = run_worker(worker_job(request, device, cores, remaining), on_event)
        if load_errors:
            raise ModelLoadError(f"cannot load the model: {load_errors[0]}", option="MODEL")
        if any(row["status"] == "oom" for row in rows):
            return
        done = {row["batch_size"] for row in rows}
        remaining = [b for b in remaining if b not in done]
        if code == 0 or not remaining:
            return
        record = _record(request, Cell(device, cores, remaining.pop(0)))  # the batch the worker died on
        killed = code == -9
        record.status = "oom" if killed else "error"
        record.error = "worker was killed (SIGKILL), probably out of memory" if killed else f"worker exited with code {code}: {stderr_tail}"
        on_row(record.to_row())
        if killed:
            return
