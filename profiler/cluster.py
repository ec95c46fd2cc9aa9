"""`themis profile --engine ray`: the same grid measured on every node class of a Ray cluster.

A fleet runs on several machine types; a plan needs each one's latencies. This module
finds the cluster's node classes, sends one task per class that reserves a whole node of
that class, and there runs the ordinary profiler (`themis.profiler.run.run_profile`, as a
library: it starts its own worker per core count and pins its cores itself, since Ray's
CPU counts are bookkeeping only). The rows come back and merge into one profile with one
device per node class.

- **Node classes.** A node that advertises a custom resource `node_class:NAME` (`ray start
  --resources='{"node_class:c7i-16": 1}'`) belongs to class NAME. Other nodes are grouped by
  shape: CPUs, GPUs and Ray's `accelerator_type` (`cpu16`, `cpu8-gpu1-A100`).
- **Placement.** A class's task asks for every CPU and GPU of one of its nodes, plus its
  `node_class:NAME` resource, or, for a shape class, Ray's `accelerator_type` (so GPU cells
  land on that accelerator) or the node itself (a node-affinity strategy). Nothing else Ray
  places can run there while it measures.
- **Devices.** CPU cells get `device_id` `node-class:NAME` and a device name that ends in
  `[NAME]`; GPU cells keep their UUID and name the class the same way. The footer's
  environment lists, per class, the Ray node id, host, CPU model and size it ran on.
- **Grid.** The same model, batch sizes and dtype everywhere. Core counts are those given
  (dropping any above a node's CPUs), or by default 1, 2, 4... up to each node's CPUs.

Ray is optional and imported here only, when this engine is asked for.
"""

from __future__ import annotations

import dataclasses
import logging
import platform
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from themis.profiler.devices import Device, available_cpus, cpu_model, default_core_counts, discover_gpus
from themis.profiler.errors import BadOptionError
from themis.profiler.run import ProfileRequest, ProfileResult
from themis.profiler.table import read_profile, write_profile

NODE_CLASS_PREFIX = "node_class:"
ACCELERATOR_PREFIX = "accelerator_type:"


@dataclass(frozen=True)
class NodeClass:
    """A kind of node of the cluster and how to place a task on one node of it."""

    name: str
    cpus: int
    gpus: int
    accelerator: str | None
    node_id: str
    """The node the class is measured on (the first alive one of the class)."""
    resource: str | None = None
    """The `node_class:NAME` resource of the class, when its nodes advertise one."""

    @property
    def device_id(self) -> str:
        return f"node-class:{self.name}"


def node_classes(nodes: Sequence[Mapping[str, Any]]) -> list[NodeClass]:
    """The classes of the alive nodes of `ray.nodes()`, in name order, one node each."""
    classes: dict[str, NodeClass] = {}
    for node in nodes:
        if not node.get("Alive", node.get("alive", False)):
            continue
        resources = node.get("Resources", {})
        cpus, gpus = int(resources.get("CPU", 0)), int(resources.get("GPU", 0))
        accelerator = next((k.removeprefix(ACCELERATOR_PREFIX) for k in sorted(resources) if k.startswith(ACCELERATOR_PREFIX)), None)
        named = sorted(k for k in resources if k.startswith(NODE_CLASS_PREFIX))
        if named:
            name, resource = named[0].removeprefix(NODE_CLASS_PREFIX), named[0]
        else:
            name = f"cpu{cpus}" + (f"-gpu{gpus}" if gpus else "") + (f"-{accelerator}" if accelerator else "")
            resource = None
        if name not in classes:
            classes[name] = NodeClass(name, cpus, gpus, accelerator, str(node["NodeID"]), resource)
    return [classes[k] for k in sorted(classes)]


def task_options(node_class: NodeClass) -> dict[str, Any]:
    """Ray task options that reserve one whole node of the class."""
    options: dict[str, Any] = {"num_cpus": node_class.cpus, "num_gpus": node_class.gpus, "max_retries": 0}
    if node_class.resource is not None:
        options["resources"] = {node_class.resource: 1}
    elif node_class.accelerator is not None:
        options["accelerator_type"] = node_class.accelerator
    else:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_class.node_id, soft=False)
    return options


def profile_cluster(request: ProfileRequest, device: str, *, cores_given: bool, address: str | None = None) -> ProfileResult:
    """Measure `request`'s grid on every node class of the cluster; merge into `request.out`."""
    ray = _import_ray()
    if request.out.suffix.lower() != ".parquet":
        raise BadOptionError(f"a profile is written as Parquet; use a .parquet file, not {request.out.name!r}", option="--out")
    if request.out.exists() and not (request.resume or request.overwrite):
        raise BadOptionError(f"{request.out} exists; pass --resume to carry on measuring it or --overwrite to start again", option="--out")
    kept = read_profile(request.out) if request.out.exists() and request.resume else None
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        classes = node_classes(ray.nodes())
        done = set(kept["device_id"]) if kept is not None else set()
        todo = [c for c in classes if not (device in ("cpu", "all") and c.device_id in done)]
        measure = ray.remote(measure_node_class)
        refs = [measure.options(**task_options(c)).remote(request, c, device, cores_given) for c in todo]
        results = ray.get(refs)
    finally:
        if started:
            ray.shutdown()
    rows = [row for result in results for row in result["rows"]]
    if kept is not None:
        measured = {row["device_id"] for row in rows}
        rows = [row for row in kept.to_dict(orient="records") if row["device_id"] not in measured] + rows
    environment = _environment(results, kept.attrs["environment"] if kept is not None else None)
    write_profile(request.out, rows, environment)
    frame = read_profile(request.out)
    measured_cells = sum(len(r["rows"]) for r in results)
    return ProfileResult(frame, environment, request.out, measured_cells=measured_cells, kept_cells=len(frame) - measured_cells)


def measure_node_class(request: ProfileRequest, node_class: NodeClass, device: str, cores_given: bool) -> dict[str, Any]:
    """On a node of the class: the profiler's own run, with devices named after the class."""
    import ray

    from themis.profiler.run import run_profile
    from themis.profiler.table import profile_rows

    cpus = len(available_cpus())
    devices = []
    if device in ("cpu", "all"):
        devices.append(Device("cpu", f"{cpu_model()} [{node_class.name}]", device_id=node_class.device_id))
    if device in ("cuda", "all") or device.startswith("cuda:"):
        devices.extend(dataclasses.replace(g, name=f"{g.name} [{node_class.name}]") for g in discover_gpus())
    cores = [c for c in request.core_counts if c <= cpus] if cores_given else default_core_counts(cpus)
    with tempfile.TemporaryDirectory() as scratch:
        local = dataclasses.replace(request, devices=devices, core_counts=cores, out=Path(scratch) / "profile.parquet",
                                    resume=False, overwrite=True)
        result = run_profile(local) if devices else None
    return {
        "node_class": node_class.name,
        "node_id": ray.get_runtime_context().get_node_id(),
        "host": platform.node(),
        "cpu_model": cpu_model(),
        "cpus": cpus,
        "gpus": [d.name for d in devices if d.kind == "cuda"],
        "rows": profile_rows(result.frame) if result is not None else [],
        "environment": result.environment if result is not None else {},
    }


def _environment(results: Sequence[Mapping[str, Any]], previous: Mapping[str, Any] | None) -> dict[str, Any]:
    """The merged profile's footer: the first class's environment, plus every class's node."""
    base = dict(previous) if previous else dict(next((r["environment"] for r in results if r["environment"]), {}))
    classes = dict((previous or {}).get("node_classes", {}))
    for result in results:
        classes[result["node_class"]] = {k: result[k] for k in ("node_id", "host", "cpu_model", "cpus", "gpus")}
    return {**base, "host": "ray cluster", "node_classes": classes}


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise BadOptionError("--engine ray needs Ray: pip install 'themis-capacity[ray]'", option="--engine") from None
    return ray
