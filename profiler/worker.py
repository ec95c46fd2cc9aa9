"""The measuring process: several per (device, core count), started by `themis.profiler.run`.

Run as `python -m themis.profiler.worker` with a JSON job on stdin. It confines itself
*before* importing torch, so it sees the machine the way a container with that many
cores does: with `cpu_limit` "pin" it pins itself to the job's first N CPUs
(`os.sched_setaffinity`); with "quota" the parent has already moved it into a cgroup
whose CFS quota is N cores, and it may run on every CPU. Either way torch gets N threads.
It answers with JSON lines on stdout: `ready`, `warming`/`timing`/`window` progress, one
`cell` per timed batch size as it finishes (`column.CellRun`), or `load_error`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from themis.profiler.cgroups import CpuGroup
from themis.profiler.column import WorkerPlan, measure_column
from themis.profiler.contention import Probe
from themis.profiler.measure import cpu_timer, cuda_timer, peak_rss_mb, reset_peak_rss
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
    GPU or under a quota) with as many torch threads; returns the torch module, imported only now."""
    if cpus is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus[:cores])
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(cores)
    import torch

    torch.set_num_threads(cores)
    torch.set_num_interop_threads(1)
    return torch


def run_job(job: dict[str, Any]) -> int:
    """Warm and time the job's batch sizes; return the process exit code."""
    cores = int(job["cores"])
    pinned = job["device_kind"] == "cpu" and job["cpu_limit"] == "pin"
    torch = confine(cores, job["cpus"] if pinned else None)
    spec = ModelSpec.from_dict(job["model"])
    on_gpu = job["device_kind"] == "cuda"
    device = "cuda:0" if on_gpu else "cpu"  # the parent sets CUDA_VISIBLE_DEVICES
    try:
        module, make_input = load_model(spec, job["dtype"], device)
    except Exception as error:  # a model that cannot load is the user's input
        _emit("load_error", message=f"{type(error).__name__}: {error}".splitlines()[0])
        return 3
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    _emit("ready", threads=torch.get_num_threads(), cpus=cpus)
    group = CpuGroup(Path(job["cgroup"]), int(job["cgroup_version"])) if job.get("cgroup") else None
    probe = Probe(cpus, threads=cores, throttled_s=group.throttled_s if group else None)
    with torch.inference_mode():  # entered once, as a serving loop would, not per call
        measure_column(
            module, make_input, job["warm_batch_sizes"], job["batch_sizes"], WorkerPlan.from_dict(job["plan"]),
            timer=cuda_timer(torch) if on_gpu else cpu_timer, probe=probe,
            reset_memory=torch.cuda.reset_peak_memory_stats if on_gpu else reset_peak_rss,
            peak_memory_mb=(lambda: torch.cuda.max_memory_allocated() / 2**20) if on_gpu else peak_rss_mb,
            emit=_emit,
        )
    return 0


if __name__ == "__main__":
    _die_with_parent()
    sys.exit(run_job(json.loads(sys.stdin.read())))
