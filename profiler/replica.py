"""A serving replica: one process that holds a model and runs batches on command.

Started by `themis replay --serve` (`themis.planner.replay.replicas`) as
`python -m themis.profiler.replica`, with a JSON job as the first line on stdin. Like a
measuring worker it pins itself to its CPUs and sets torch's threads *before* importing
torch, then loads the model and warms up every batch size it may be given (so no batch is
served in a colder state than the profile measured). Load plus warm-up is the replica's
real cold start.

Commands arrive one JSON line at a time on stdin and are answered in order on stdout:

- `{"op": "batch", "k": K}` -> `{"event": "done", "k": K, "service_ms": ..., "classes": [...]}`
- `{"op": "resize", "cores": C, "cpus": [...]}` -> `{"event": "resized", "cores": C, "apply_ms": ...}`

Its cores are held one of two ways, as the profile measured them (`--cpu-limit`): pinned
(its own CPUs, by affinity) or under a CFS quota (the job names a cgroup the server made
and put the process in; the replica may run on all of the server's CPUs, and a resize
writes the group's quota with the profiler's cgroup code).
- `{"op": "stop"}` -> the process exits 0.

A command is read only once the batch before it has finished, so a resize never changes
the speed of a batch already running (SPEC). Before the first command it says `loaded`
(or `load_error`) and `ready`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from themis.profiler.cgroups import CpuGroup
from themis.profiler.models import ModelSpec, load_model
from themis.profiler.worker import _die_with_parent, confine


def _emit(event: str, **payload: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **payload}) + "\n")
    sys.stdout.flush()


class Replica:
    """A loaded model with one ready input per batch size; `resize` is the one place its
    cores change (CPU affinity, or the CFS quota of its `group`)."""

    def __init__(self, torch: Any, module: Any, make_input: Callable[[int], Any], cores: int, group: CpuGroup | None = None) -> None:
        self.torch, self.module, self.make_input = torch, module, make_input
        self.cores, self.group = cores, group
        self.inputs: dict[int, Any] = {}

    def warm_up(self, batch_sizes: list[int], calls: int) -> None:
        """Make each batch size's input and run it `calls` times untimed."""
        for k in batch_sizes:
            self.inputs[k] = self.make_input(k)
            for _ in range(calls):
                self.run(k)

    def run(self, k: int) -> tuple[float, list[int]]:
        """Serve one batch of k; returns its compute time in ms and the top-1 class per item."""
        x = self.inputs.get(k)
        if x is None:
            x = self.inputs[k] = self.make_input(k)
        start = time.perf_counter_ns()
        with self.torch.inference_mode():
            output = self.module(x)
        service_ms = (time.perf_counter_ns() - start) / 1e6
        return service_ms, _top1(self.torch, output)

    def resize(self, cores: int, cpus: list[int]) -> float:
        """Under a quota, set the group's quota to `cores`; pinned, move every thread of this
        process onto `cpus`. Either way use `cores` torch threads; returns how long that took in ms."""
        start = time.perf_counter_ns()
        if self.group is not None:
            self.group.set_cpu_quota(cores)
        elif cpus and hasattr(os, "sched_setaffinity"):
            for tid in _thread_ids():  # affinity is per thread: move the running pool too
                try:
                    os.sched_setaffinity(tid, cpus)
                except (ProcessLookupError, PermissionError):
                    pass  # a thread that just ended
        self.torch.set_num_threads(cores)
        self.cores = cores
        return (time.perf_counter_ns() - start) / 1e6


def _thread_ids() -> list[int]:
    try:
        return [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


def _top1(torch: Any, output: Any) -> list[int]:
    """The arg-max class of each item, when the output is a (batch, classes) tensor."""
    if isinstance(output, (tuple, list)) and output:
        output = output[0]
    if isinstance(output, torch.Tensor) and output.dim() >= 2:
        return [int(c) for c in output.reshape(output.shape[0], -1).argmax(dim=1).tolist()]
    return []


def serve(job: dict[str, Any]) -> int:
    """Load, warm up, then answer commands until `stop` or the end of stdin."""
    started = time.perf_counter()
    cores = int(job["cores"])
    group = CpuGroup(Path(job["cgroup"]), int(job["cgroup_version"])) if job.get("cgroup") else None
    if group is not None and job["cpus"] and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, job["cpus"])  # all the server's CPUs: the quota, not affinity, holds it to its cores
    torch = confine(cores, None if group is not None else job["cpus"] or None)
    spec = ModelSpec.from_dict(job["model"])
    try:
        module, make_input = load_model(spec, job["dtype"], "cpu")
    except Exception as error:  # a model that cannot load is the user's input
        _emit("load_error", message=f"{type(error).__name__}: {error}".splitlines()[0])
        return 3
    loaded = time.perf_counter()
    _emit("loaded", load_s=loaded - started)
    replica = Replica(torch, module, make_input, cores, group)
    replica.warm_up([int(k) for k in job["batch_sizes"]], int(job["warmup_calls"]))
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    _emit("ready", warmup_s=time.perf_counter() - loaded, threads=torch.get_num_threads(), cpus=affinity)
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "batch":
            service_ms, classes = replica.run(int(command["k"]))
            _emit("done", k=int(command["k"]), service_ms=service_ms, classes=classes)
        elif command["op"] == "resize":
            apply_ms = replica.resize(int(command["cores"]), [int(c) for c in command["cpus"]])
            _emit("resized", cores=replica.cores, apply_ms=apply_ms)
        elif command["op"] == "stop":
            break
    return 0


if __name__ == "__main__":
    _die_with_parent()
    sys.exit(serve(json.loads(sys.stdin.readline())))
