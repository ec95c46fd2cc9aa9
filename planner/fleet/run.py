"""A sharded fleet run: shards planned on an engine, each written as it finishes, resumable.

The output directory holds a manifest (`manifest.json`: what fleet this is, as a
fingerprint of its services, settings, model files and trace files) and one Parquet file
per shard and table (`plans/shard-00007.parquet`), written atomically as the shard comes
back. `--resume` keeps every shard file whose footer names the same fleet and runs only
the missing ones, so a crash or a killed worker costs the unfinished shards only. The
driver builds a shard's inputs (traces, models) only when it submits it, and holds one
shard's result at a time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from themis.common import SCHEMA_VERSION
from themis.common.atomic import write_atomic, write_text_atomic
from themis.planner.fleet.engines import Engine
from themis.planner.fleet.errors import FleetError
from themis.planner.fleet.models import ModelLibrary, ServiceModels
from themis.planner.fleet.shard import ServiceJob, ShardOutput, ShardTask, shard_ranges
from themis.planner.fleet.spec import FleetSpec, ServiceSpec
from themis.planner.fleet.traffic import TrafficLoader

MANIFEST = "manifest.json"
Progress = Callable[[int, int], None]
"""Called with (services done, services in the fleet) as shards finish."""


@dataclass(frozen=True)
class RunSettings:
    """Where and how a sharded run writes."""

    out_dir: Path
    shard_size: int
    resume: bool = False
    overwrite: bool = False


@dataclass(frozen=True)
class ShardedRun:
    """What a sharded run did: the shard files per table, how many were planned now and kept."""

    fingerprint: str
    files: dict[str, list[Path]]
    shards: int
    planned: int
    kept: int


def run_sharded(
    kind: str,
    fleet: FleetSpec,
    settings: RunSettings,
    engine: Engine,
    task_function: Callable[[ShardTask], ShardOutput],
    tables: Sequence[str],
    *,
    policies: tuple[str, ...] = (),
    seed: int = 0,
    progress: Progress | None = None,
) -> ShardedRun:
    """Run `task_function` over the fleet's shards on `engine`; every shard writes one file per table."""
    if settings.shard_size < 1:
        raise FleetError(f"must be at least 1, got {settings.shard_size}", option="--shard-size")
    interval_s = fleet.interval_s  # one interval for the whole fleet, checked before any work
    library = ModelLibrary()
    ranges = shard_ranges(len(fleet.services), settings.shard_size)
    fingerprint = fleet_fingerprint(kind, fleet, library, settings.shard_size, policies, seed)
    _prepare(settings, kind, fingerprint, tables, len(ranges), fleet, interval_s)
    paths = {t: [settings.out_dir / t / f"shard-{i:05d}.parquet" for i in range(len(ranges))] for t in tables}
    todo = [i for i in range(len(ranges)) if not all(_is_shard_of(paths[t][i], fingerprint) for t in tables)]
    pending = set(todo)
    done_services = sum(len(r) for i, r in enumerate(ranges) if i not in pending)
    report = progress or (lambda done, total: None)
    report(done_services, len(fleet.services))
    loader = TrafficLoader()

    def tasks() -> Iterator[ShardTask]:
        for i in todo:
            yield _task(i, fingerprint, [fleet.services[k] for k in ranges[i]], library, loader, policies, seed)

    for output in engine.run(task_function, tasks()):
        for table in tables:
            write_atomic(paths[table][output.index], lambda tmp, data=output.files[table]: tmp.write_bytes(data))
        done_services += output.services
        report(done_services, len(fleet.services))
    return ShardedRun(fingerprint, paths, len(ranges), len(todo), len(ranges) - len(todo))


def _task(
    index: int, fingerprint: str, services: list[ServiceSpec], library: ModelLibrary, loader: TrafficLoader,
    policies: tuple[str, ...], seed: int,
) -> ShardTask:
    models: dict[str, ServiceModels] = {}
    jobs = []
    for service in services:
        found = library.models(service.stages)
        models[found.key] = found
        jobs.append(ServiceJob(service.name, loader.trace(service.traffic), found.key, service.config, service.policy, service.memory_mb))
    return ShardTask(index, fingerprint, tuple(jobs), models, policies, seed)


def fleet_fingerprint(
    kind: str, fleet: FleetSpec, library: ModelLibrary, shard_size: int, policies: tuple[str, ...], seed: int
) -> str:
    """A hash of everything a shard's rows depend on: the services (traffic source, trace
    files' size and modification time, model files' bytes, settings, policy), the shard
    layout, and the run's kind, policies and seed."""
    stats: dict[str, list[int]] = {}

    def stat(path: str) -> list[int]:
        if path not in stats:
            try:
                info = os.stat(path)
            except OSError as exc:
                raise FleetError(f"cannot read ({exc.strerror})", file=path) from None
            stats[path] = [info.st_size, info.st_mtime_ns]
        return stats[path]

    digest = hashlib.sha256(json.dumps([SCHEMA_VERSION, kind, shard_size, list(policies), seed, fleet.synthetic]).encode())
    for service in fleet.services:
        traffic = dataclasses.asdict(service.traffic)
        traffic["files"] = [stat(p) for p in service.traffic.paths]
        entry = [service.name, type(service.traffic).__name__, traffic, library.models(service.stages).key,
                 dataclasses.asdict(service.config), service.policy, service.memory_mb]
        digest.update(json.dumps(entry, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:24]


def _prepare(
    settings: RunSettings, kind: str, fingerprint: str, tables: Sequence[str], shards: int, fleet: FleetSpec, interval_s: float
) -> None:
    """Make the output directory ready: refuse to mix fleets, clear on --overwrite, write the manifest."""
    out = settings.out_dir
    manifest_path = out / MANIFEST
    existing = _read_manifest(manifest_path) if manifest_path.exists() else None
    ours = [p for t in tables for p in (out / t).glob("shard-*.parquet")] if out.is_dir() else []
    if existing is not None or ours:
        same = existing is not None and existing.get("fingerprint") == fingerprint
        if settings.overwrite:
            for path in ours:
                path.unlink()
        elif not settings.resume:
            raise FleetError("already holds a fleet run; pass --resume to carry on or --overwrite to start again", file=out)
        elif not same:
            raise FleetError("holds the run of another fleet or other settings; --resume needs the same inputs "
                             "(pass --overwrite to start again)", file=out)
    elif out.exists() and not out.is_dir():
        raise FleetError("is not a directory", file=out)
    for table in tables:
        (out / table).mkdir(parents=True, exist_ok=True)
    manifest = {
        "schema_version": SCHEMA_VERSION, "kind": f"{kind}_manifest", "fingerprint": fingerprint, "source": fleet.source,
        "synthetic": fleet.synthetic, "services": len(fleet.services), "shards": shards, "tables": list(tables),
        "interval_s": interval_s,
    }
    write_text_atomic(manifest_path, json.dumps(manifest, indent=2) + "\n")


def _read_manifest(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise FleetError("is not a readable fleet manifest (pass --overwrite to start again)", file=path) from None
    if not isinstance(data, dict):
        raise FleetError("is not a fleet manifest (pass --overwrite to start again)", file=path)
    return data


def _is_shard_of(path: Path, fingerprint: str) -> bool:
    """A finished shard file of this fleet (a torn or foreign file is planned again)."""
    if not path.exists():
        return False
    try:
        meta = pq.read_schema(path).metadata or {}
    except Exception:  # noqa: BLE001 - any unreadable file is simply redone
        return False
    return meta.get(b"themis.fleet") == fingerprint.encode()
