"""Measure an LLM's iterations: prefill over prompt length x batch, decode over batch x context.

The model must have the serving interface of `themis.sample_models.tiny_llm` (a
`torch.nn.Module` with `vocab_size`, `prefill(tokens, max_tokens)` and
`decode(tokens, cache)`); a bundled sample (`tiny_llm`) or a `module:factory` returning
one. Each core count runs in its own process (`python -m themis.profiler.llm`), pinned
with `themis.profiler.worker.confine` (CPU affinity plus as many torch threads) before
torch is imported, so it sees the machine the way a container with that many cores does.
The parent does not import torch itself (only a user factory's module, which `is_llm_model`
imports to inspect it) and rewrites the Parquet table atomically after every cell.

Timing reuses `themis.profiler.measure` (warm-up, budget, early stop on a settled median;
CPU wall clock or CUDA events). A decode cell prefills its context once, untimed, then
times `decode` repeatedly from that same cache, so every sample sees the same context.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import os
import subprocess
import sys
import tempfile
import typing
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from themis.profiler.devices import Device, available_cpus, cpu_device, environment
from themis.profiler.errors import BadOptionError, ModelLoadError
from themis.profiler.llm_table import CELL_KEY, COLUMNS, write_llm_profile
from themis.profiler.measure import Budget, cpu_timer, cuda_timer, is_out_of_memory, time_window
from themis.profiler.models import ModelSpec, load_model, resolve_model
from themis.profiler.worker import _die_with_parent, confine  # the batch worker's process set-up
from themis.sample_models import SAMPLE_MODELS

SEED = 0
"""Seed of the random token ids fed to the model (values do not change the timing)."""


@dataclass(frozen=True)
class LlmCell:
    """One measurement: a prefill of `batch_size` x `prompt_tokens`, or a decode step of
    `batch_size` sequences with `context_tokens` cached."""

    phase: str
    batch_size: int
    prompt_tokens: int = 0
    context_tokens: int = 0

    @property
    def tokens(self) -> int:
        """Tokens the cell holds in the KV cache: what bounds its memory and set-up time."""
        return self.batch_size * (self.prompt_tokens + self.context_tokens + (self.phase == "decode"))


@dataclass(frozen=True)
class LlmGrid:
    """The cells to measure. Cells holding more than `max_cell_tokens` tokens are skipped
    (a 32 x 2048 decode cell would first prefill 65k tokens); the default grid has 23 cells."""

    prompt_tokens: tuple[int, ...] = (16, 64, 256, 1024, 2048, 4096)
    prefill_batch_sizes: tuple[int, ...] = (1, 4)
    context_tokens: tuple[int, ...] = (64, 256, 1024, 2048, 4096)
    decode_batch_sizes: tuple[int, ...] = (1, 4, 16, 32)
    max_cell_tokens: int = 10_000

    def cells(self) -> list[LlmCell]:
        prefill = [LlmCell("prefill", b, prompt_tokens=p) for p in self.prompt_tokens for b in self.prefill_batch_sizes]
        decode = [LlmCell("decode", b, context_tokens=c) for c in self.context_tokens for b in self.decode_batch_sizes]
        return [c for c in prefill + decode if c.tokens <= self.max_cell_tokens]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __post_init__(self) -> None:
        sizes = (*self.prompt_tokens, *self.prefill_batch_sizes, *self.context_tokens, *self.decode_batch_sizes)
        if not all(int(n) >= 1 for n in sizes):
            raise BadOptionError("prompt lengths, context lengths and batch sizes must be positive integers", option="--llm-grid")


@dataclass
class LlmCellRecord:
    """One row of the LLM profile table (`themis.profiler.llm_table.COLUMNS`)."""

    model: str
    device_kind: str
    device_name: str
    device_id: str
    cores: int
    dtype: str
    phase: str
    batch_size: int
    prompt_tokens: int
    context_tokens: int
    p50_ms: float = math.nan
    p90_ms: float = math.nan
    p99_ms: float = math.nan
    mean_ms: float = math.nan
    std_ms: float = math.nan
    samples: int = 0
    status: str = "ok"
    error: str = ""
    provenance: str = "measured"
    attention: str = "included"

    def with_times(self, times_ms: list[float]) -> LlmCellRecord:
        values = np.asarray(times_ms, dtype=float)
        self.p50_ms, self.p90_ms, self.p99_ms = (float(v) for v in np.percentile(values, [50, 90, 99]))
        self.mean_ms = float(values.mean())
        self.std_ms = float(values.std(ddof=1)) if values.size > 1 else 0.0
        self.samples = int(values.size)
        return self

    def to_row(self) -> dict[str, Any]:
        return asdict(self)


def check_interface(module: Any) -> None:
    """Raise `ModelLoadError` unless `module` has the LLM serving interface."""
    missing = [name for name in ("prefill", "decode") if not callable(getattr(module, name, None))]
    if not isinstance(getattr(module, "vocab_size", None), int):
        missing.append("vocab_size")
    if missing:
        raise ModelLoadError(
            f"{type(module).__name__} lacks {', '.join(missing)}: an LLM needs vocab_size, prefill(tokens, max_tokens) "
            "and decode(tokens, cache) (see themis.sample_models.tiny_llm)", option="MODEL",
        )


def measure_llm_cell(record: LlmCellRecord, module: Any, budget: Budget, device: str = "cpu") -> LlmCellRecord:
    """Time `record`'s cell on `module` (already on `device`); fills and returns `record`.

    Never raises for a failing model: out of memory gives status `oom`, anything else `error`.
    """
    import torch

    on_gpu = device.startswith("cuda")
    generator = torch.Generator().manual_seed(SEED)
    try:
        with torch.inference_mode():
            if record.phase == "prefill":
                tokens = torch.randint(0, module.vocab_size, (record.batch_size, record.prompt_tokens), generator=generator).to(device)
                call = lambda: module.prefill(tokens, record.prompt_tokens)  # noqa: E731
            else:
                context = torch.randint(0, module.vocab_size, (record.batch_size, record.context_tokens), generator=generator).to(device)
                _, cache = module.prefill(context, record.context_tokens + 1)
                last = torch.randint(0, module.vocab_size, (record.batch_size,), generator=generator).to(device)
                call = lambda: module.decode(last, cache)  # noqa: E731
            for _ in range(budget.warmup):
                call()
            record.with_times(time_window(call, cuda_timer(torch) if on_gpu else cpu_timer, budget.min_samples, budget.budget_s))
    except Exception as error:  # the model's failure is a measured outcome, not a themis bug
        record.status = "oom" if is_out_of_memory(error) else "error"
        text = str(error).strip()
        record.error = f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"[:500]
    finally:
        if on_gpu:
            torch.cuda.empty_cache()
    return record


# ----------------------------------------------------------------------------- worker process


def is_llm_model(reference: str) -> bool:
    """Whether MODEL names an LLM (measured here, not by the batch profiler): a sample of kind
    `llm`, or a `module:factory` that is a class with `prefill` and `decode`, or a function
    whose return annotation is such a class. The factory is inspected, never called."""
    if reference in SAMPLE_MODELS:
        return SAMPLE_MODELS[reference].is_llm
    if ":" not in reference or "/" in reference:
        return False
    module_name, _, attribute = reference.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
        target = factory if inspect.isclass(factory) else typing.get_type_hints(factory).get("return")
    except Exception:  # noqa: BLE001 - an unimportable or unannotated factory is not known to be an LLM; resolve_model names the problem
        return False
    return inspect.isclass(target) and all(callable(getattr(target, name, None)) for name in ("prefill", "decode"))


def llm_model_spec(reference: str) -> ModelSpec:
    """MODEL for `profile_llm`: a bundled LLM sample or `module:factory` (checked without torch)."""
    if reference in SAMPLE_MODELS and not SAMPLE_MODELS[reference].is_llm:
        llms = ", ".join(name for name, m in SAMPLE_MODELS.items() if m.is_llm)
        raise BadOptionError(f"{reference} is not an LLM (LLM samples: {llms}; or module:factory)", option="MODEL")
    if reference not in SAMPLE_MODELS and (":" not in reference or "/" in reference):
        raise BadOptionError(f"an LLM is a sample ({reference!r} is not one) or module:factory", option="MODEL")
    return resolve_model(reference, input_shape=(1,))


def _emit(event: str, **payload: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **payload}) + "\n")
    sys.stdout.flush()


def run_llm_job(job: dict[str, Any]) -> int:
    """Measure every cell of the job in this process, confined to `job["cores"]` before torch
    is imported; returns the exit code."""
    cores = int(job["cores"])
    confine(cores, job["cpus"] if job["device_kind"] == "cpu" else None)
    spec = ModelSpec.from_dict(job["model"])
    device = "cuda:0" if job["device_kind"] == "cuda" else "cpu"  # the parent sets CUDA_VISIBLE_DEVICES
    try:
        module, _ = load_model(spec, job["dtype"], device)
        check_interface(module)
    except Exception as error:  # a model that cannot load is the user's input
        _emit("load_error", message=f"{type(error).__name__}: {error}".splitlines()[0])
        return 3
    _emit("ready")
    budget = Budget(**job["budget"])
    for cell in job["cells"]:
        record = LlmCellRecord(
            model=spec.name, device_kind=job["device_kind"], device_name=job["device_name"], device_id=job["device_id"],
            cores=cores, dtype=job["dtype"], **cell,
        )
        _emit("cell", row=measure_llm_cell(record, module, budget, device).to_row())
    return 0


# ----------------------------------------------------------------------------- parent


@dataclass(frozen=True)
class LlmProfileRequest:
    """What to measure: `model` (a sample name or `module:factory`) at each core count."""

    model: str
    core_counts: tuple[int, ...]
    grid: LlmGrid = field(default_factory=LlmGrid)
    budget: Budget = field(default_factory=Budget)
    device: Device | None = None
    """None: the CPU (`themis.profiler.devices.cpu_device()`)."""
    dtype: str = "float32"


def profile_llm(
    request: LlmProfileRequest, out: str | Path | None = None, on_row: Callable[[dict[str, Any]], None] | None = None
) -> pd.DataFrame:
    """Measure every cell at every core count; return the rows (and write them to `out`,
    atomically after every cell, when given). `frame.attrs["environment"]` is the footer's."""
    spec = llm_model_spec(request.model)
    device = request.device or cpu_device()
    cpus = available_cpus()
    too_many = [c for c in request.core_counts if device.kind == "cpu" and c > len(cpus)]
    if too_many or not request.core_counts:
        raise BadOptionError(f"core counts must be 1..{len(cpus)} on this machine (got {list(request.core_counts)})", option="--cores")
    env = {**environment([device]), "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else []}
    rows: list[dict[str, Any]] = []

    def keep(row: dict[str, Any]) -> None:
        rows.append(row)
        if out is not None:
            write_llm_profile(out, rows, env)
        if on_row is not None:
            on_row(row)

    cells = [asdict(c) for c in request.grid.cells()]
    for cores in request.core_counts:
        job = {
            "model": spec.to_dict(), "dtype": request.dtype, "budget": request.budget.to_dict(), "cells": cells,
            "device_kind": device.kind, "device_name": device.name, "device_id": device.device_id,
            "cores": int(cores), "cpus": cpus,
        }
        for event in _run_worker(job):
            if event["event"] == "load_error":
                raise ModelLoadError(f"cannot load the model: {event['message']}", option="MODEL")
            if event["event"] == "cell":
                keep(event["row"])
    env["load_average_after"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else []
    if out is not None:
        write_llm_profile(out, rows, env)
    frame = pd.DataFrame(sorted(rows, key=lambda r: tuple(r[k] for k in CELL_KEY)), columns=list(COLUMNS))
    frame.attrs["environment"] = env
    return frame


def _run_worker(job: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Start `python -m themis.profiler.llm`, feed it `job`, yield its events; a crash is an error."""
    env = dict(os.environ)
    if job["device_kind"] == "cuda":
        env.update(CUDA_DEVICE_ORDER="PCI_BUS_ID", CUDA_VISIBLE_DEVICES=job["device_id"])
    with tempfile.TemporaryFile(mode="w+") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "themis.profiler.llm"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env,
        )
        try:
            process.stdin.write(json.dumps(job))
            process.stdin.close()
            for line in process.stdout:
                yield json.loads(line)
            code = process.wait()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        stderr.seek(0)
        tail = " ".join(stderr.read().strip().splitlines()[-1:])
    if code not in (0, 3):
        raise ModelLoadError(f"the LLM measuring process exited with code {code}: {tail}", option="MODEL")


if __name__ == "__main__":
    _die_with_parent()
    sys.exit(run_llm_job(json.loads(sys.stdin.read())))
