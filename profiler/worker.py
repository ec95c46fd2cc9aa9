"""The measuring process: one per (device, core count), started by `themis.profiler.run`.

Run as `python -m themis.profiler.worker` with a JSON job on stdin. It pins itself to
the job's CPUs (`os.sched_setaffinity`) and sets torch's threads to match *before*
importing torch, so it sees the machine the way a container with that many cores does.
It answers with JSON lines on stdout: `ready`, then one `cell` per batch size (in
increasing order, stopping after an out-of-memory batch), or `load_error`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any

from themis.profiler.measure import Budget, CellRecord, measure_cell
from themis.profiler.models import ModelSpec, load_model


def _die_with_parent() -> None:
    """Ask Linux to kill this worker when the parent dies (e.g. `kill -9` of `themis`)."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _emit(event: str, **payload: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **payload}) + "\n")
    sys.stdout.flush()


def confine(cores: int, cpus: list[int] | None) -> Any:
    """Pin this process to the first `cores` of `cpus` (None: leave affinity alone, e.g. on a
    GPU) with as many torch threads; returns the torch module, imported only now."""
    if cpus is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus[:cores])
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(cores)
    import torch

    torch.set_num_threads(cores)
    torch.set_num_interop_threads(1)
    return torch


def run_job(job: dict[str, Any]) -> int:
    """Measure every batch size of the job; return the process exit code."""
    cores = int(job["cores"])
    torch = confine(cores, job["cpus"] if job["device_kind"] == "cpu" else None)
    spec = ModelSpec.from_dict(job["model"])
    device = "cuda:0" if job["device_kind"] == "cuda" else "cpu"  # the parent sets CUDA_VISIBLE_DEVICES
    try:
        module, make_input = load_model(spec, job["dtype"], device)
    except Exception as error:  # a model that cannot load is the user's input
        _emit("load_error", message=f"{type(error).__name__}: {error}".splitlines()[0])
        return 3
    _emit("ready", threads=torch.get_num_threads(), cpus=sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [])
    budget = Budget(**job["budget"])
    for batch_size in job["batch_sizes"]:
        _emit("start", batch_size=batch_size)
        record = CellRecord(
            model=spec.name, device_kind=job["device_kind"], device_name=job["device_name"], device_id=job["device_id"],
            cores=cores, batch_size=batch_size, dtype=job["dtype"], input_shape=spec.input_shape_text,
        )
        measure_cell(record, module, make_input, budget)
        _emit("cell", row=record.to_row())
        if record.status == "oom":
            break
    return 0


if __name__ == "__main__":
    _die_with_parent()
    sys.exit(run_job(json.loads(sys.stdin.read())))
