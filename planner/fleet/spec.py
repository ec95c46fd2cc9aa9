"""What a fleet is: services, each with its own traffic, latency models, SLO and settings.

A fleet comes from a fleet file (YAML), from "every function of these Azure Functions day
files" (`per_function_fleet`), or from the benchmark generator (`synthetic`). Every service
ends up as a `ServiceSpec`: where its traffic comes from (a `Traffic`, loaded only when its
shard is planned), where its latency models come from (a `StageSource`), its `PlanConfig`
and its policy. The fleet file uses the planner's own setting names, units included:

    defaults:                       # every service key but name and traffic may go here
      profile: profiles/resnet18_cpu.parquet
      slo_ms: 300
    services:
      - name: checkout
        trace: traces/d01.csv       # one file or a list of day files, relative to this file
        function: 9a3e4f...         # optional: Azure Functions selection (`top` too)
        scale: 2.0
      - name: search
        trace: traces/search.csv
        pipeline: search.yaml       # instead of `profile` (+ optional `model`)
        slo_ms: 150
        policy: horizontal          # and any PlanConfig field: forecast, headroom, cores ...
        memory_mb: 2048             # a pod's memory (default: the profile's peak memory)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from themis.common.errors import InputError, first_line
from themis.common.files import read_text
from themis.planner.choices import FORECAST_METHODS, PLANNED_POLICIES
from themis.planner.fleet.errors import FleetError
from themis.planner.model.config import PlanConfig


@dataclass(frozen=True)
class FileTraffic:
    """A trace as `themis plan --trace` reads it: file(s), selection, then scale."""

    paths: tuple[str, ...]
    function: str | None = None
    top: int | None = None
    scale: float = 1.0
    seed: int = 0


@dataclass(frozen=True)
class FunctionTraffic:
    """Row `row` of the per-function table of Azure Functions 2019 day files `paths`,
    scaled as `themis plan --scale` scales a trace."""

    paths: tuple[str, ...]
    row: int
    scale: float = 1.0
    seed: int = 0


@dataclass(frozen=True)
class SyntheticTraffic:
    """A function of `paths` resampled for benchmarks (`synthetic.resample`): shifted in time
    by whole intervals, scaled in volume, and drawn again as Poisson counts with `seed`."""

    paths: tuple[str, ...]
    row: int
    shift_intervals: int
    scale: float
    seed: int


Traffic = FileTraffic | FunctionTraffic | SyntheticTraffic


@dataclass(frozen=True)
class StageSource:
    """Where a service's latency models come from: profiles (one stage) or a pipeline YAML."""

    profiles: tuple[str, ...] = ()
    model: str | None = None
    pipeline: str | None = None


@dataclass(frozen=True)
class ServiceSpec:
    """One service of the fleet, planned on its own."""

    name: str
    traffic: Traffic
    stages: StageSource
    config: PlanConfig
    policy: str = "themis"
    memory_mb: float | None = None
    """A pod's memory; None: the profile's peak memory at the planned batch."""


@dataclass
class FleetSpec:
    """The services of a fleet, in planning order, and where they came from."""

    services: list[ServiceSpec]
    source: str
    synthetic: bool = False
    """True for generated fleets (benchmarks): every output they feed says so."""

    @property
    def interval_s(self) -> float:
        """The fleet's one planning interval (totals are per interval)."""
        intervals = {s.config.interval_s for s in self.services}
        if len(intervals) != 1:
            raise FleetError(
                f"services plan at different intervals ({', '.join(f'{v:g} s' for v in sorted(intervals))}); "
                "a fleet's totals are per interval, so give every service the same interval_s"
            )
        return intervals.pop()


SERVICE_KEYS = {"name", "trace", "function", "top", "scale", "seed", "profile", "model", "pipeline", "policy", "memory_mb"}
FLEET_WIDE = {"node_cores"}
"""PlanConfig fields that describe the node type: fleet-wide, set on the command line."""
CONFIG_KEYS = {f.name for f in dataclasses.fields(PlanConfig)} - FLEET_WIDE
_TRAFFIC_KEYS = {"name", "trace", "function", "top", "scale", "seed"}


def load_fleet(path: str | Path, base: Mapping[str, Any], policy: str = "themis") -> FleetSpec:
    """The fleet file at `path`. `base` holds PlanConfig fields from the command line; the
    file's `defaults` override them and each service's keys override both."""
    path = Path(path)
    try:
        data = yaml.safe_load(read_text(path))
    except yaml.YAMLError as exc:
        raise FleetError(f"not valid YAML ({first_line(exc)})", file=path) from None
    if not isinstance(data, dict) or not isinstance(data.get("services"), list) or not data["services"]:
        raise FleetError("expected a mapping with a non-empty `services` list", file=path)
    unknown = set(data) - {"defaults", "services"}
    if unknown:
        raise FleetError(f"unknown top-level key(s) {', '.join(sorted(unknown))} (use defaults, services)", file=path)
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise FleetError("`defaults` must be a mapping", file=path)
    _check_keys(defaults, path, "defaults", SERVICE_KEYS - _TRAFFIC_KEYS)
    services, names = [], set()
    for i, entry in enumerate(data["services"], start=1):
        if not isinstance(entry, dict):
            raise FleetError(f"service {i}: expected a mapping", file=path)
        where = f"service {i}" + (f" ({entry['name']})" if "name" in entry else "")
        _check_keys(entry, path, where, SERVICE_KEYS)
        merged = {**defaults, **entry}
        service = _service(merged, path, where, base, policy)
        if service.name in names:
            raise FleetError(f"{where}: duplicate service name {service.name!r}", file=path)
        names.add(service.name)
        services.append(service)
    return FleetSpec(services, source=str(path))


def per_function_fleet(
    paths: Sequence[str | Path],
    names: Sequence[str],
    rows: Sequence[int],
    stages: StageSource,
    config: PlanConfig,
    policy: str = "themis",
    *,
    scale: float = 1.0,
    seed: int = 0,
) -> FleetSpec:
    """One service per selected row of Azure Functions day files, all with the same models
    and settings (`traffic.select_rows` picks the rows and names)."""
    if not scale > 0:
        raise FleetError(f"must be positive, got {scale:g}", option="--scale")
    files = tuple(str(p) for p in paths)
    services = [ServiceSpec(name, FunctionTraffic(files, int(row), scale, seed), stages, config, policy) for name, row in zip(names, rows)]
    if not services:
        raise FleetError("no function left to plan (check --top and --min-requests)", option="--per-function")
    shown = Path(files[0]).name + (f" (+{len(files) - 1} days)" if len(files) > 1 else "")
    return FleetSpec(services, source=f"every function of {shown}")


def config_with(base: PlanConfig | Mapping[str, Any], overrides: Mapping[str, Any], where: str, path: Path | None = None) -> PlanConfig:
    """`base` with the PlanConfig fields in `overrides`, validated (errors name `where`)."""
    fields = dataclasses.asdict(base) if isinstance(base, PlanConfig) else dict(base)
    for key, value in overrides.items():
        fields[key] = _config_value(key, value, where, path)
    if fields.get("slo_ms") is None:
        raise FleetError(f"{where}: no SLO (set slo_ms in the fleet file or pass --slo)", file=path)
    try:
        config = PlanConfig(**fields)
        config.validate()
    except InputError as error:
        raise FleetError(f"{where}: {error.option or ''} {error.message}".replace("  ", " "), file=path) from None
    return config


def _service(entry: dict[str, Any], path: Path, where: str, base: Mapping[str, Any], default_policy: str) -> ServiceSpec:
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise FleetError(f"{where}: `name` must be a non-empty string", file=path)
    traces = _paths(entry.get("trace"), path, where, "trace")
    if not traces:
        raise FleetError(f"{where}: `trace` must name a trace file (or a list of day files)", file=path)
    top = entry.get("top")
    if top is not None and (not isinstance(top, int) or top < 1):
        raise FleetError(f"{where}: `top` must be a whole number >= 1", file=path)
    scale = _number(entry.get("scale", 1.0), where, "scale", path)
    if not scale > 0:
        raise FleetError(f"{where}: `scale` must be positive", file=path)
    traffic = FileTraffic(traces, _text(entry.get("function"), where, "function", path), top, scale, int(entry.get("seed", 0)))
    profiles = _paths(entry.get("profile"), path, where, "profile")
    pipeline = _paths(entry.get("pipeline"), path, where, "pipeline")
    if bool(profiles) == bool(pipeline):
        raise FleetError(f"{where}: give either `profile` or `pipeline`", file=path)
    stages = StageSource(profiles, _text(entry.get("model"), where, "model", path), pipeline[0] if pipeline else None)
    policy = entry.get("policy", default_policy)
    if policy not in PLANNED_POLICIES:
        raise FleetError(f"{where}: unknown policy {policy!r}; use one of {', '.join(PLANNED_POLICIES)}", file=path)
    memory = entry.get("memory_mb")
    if memory is not None and not _number(memory, where, "memory_mb", path) > 0:
        raise FleetError(f"{where}: `memory_mb` must be positive", file=path)
    overrides = {k: v for k, v in entry.items() if k in CONFIG_KEYS}
    config = config_with(base, overrides, where, path)
    return ServiceSpec(name, traffic, stages, config, policy, float(memory) if memory is not None else None)


def _check_keys(entry: Mapping[str, Any], path: Path, where: str, allowed: set[str]) -> None:
    wide = set(entry) & FLEET_WIDE
    if wide:
        raise FleetError(f"{where}: {', '.join(sorted(wide))} is the fleet's node type; set it with --node-cores", file=path)
    unknown = set(entry) - allowed - CONFIG_KEYS
    if unknown:
        raise FleetError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}", file=path)


def _config_value(key: str, value: Any, where: str, path: Path | None) -> Any:
    if key in ("cores", "batch_sizes"):
        items = value if isinstance(value, list) else [value]
        if not items or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in items):
            raise FleetError(f"{where}: `{key}` must list positive whole numbers", file=path)
        return tuple(sorted(set(items)))
    if key == "price_per_gpu_hour":
        if not isinstance(value, dict):
            raise FleetError(f"{where}: `{key}` must map GPU names to prices", file=path)
        return {str(k): _number(v, where, key, path) for k, v in value.items()}
    if key == "forecast":
        if value not in FORECAST_METHODS:
            raise FleetError(f"{where}: unknown forecast {value!r}; use one of {', '.join(FORECAST_METHODS)}", file=path)
        return value
    if key in ("max_replicas", "latency_units", "horizontal_cores", "vertical_replicas"):
        if value is None and key in ("horizontal_cores", "vertical_replicas"):
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise FleetError(f"{where}: `{key}` must be a whole number", file=path)
        return value
    return _number(value, where, key, path)


def _number(value: Any, where: str, key: str, path: Path | None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FleetError(f"{where}: `{key}` must be a number, got {value!r}", file=path)
    return float(value)


def _text(value: Any, where: str, key: str, path: Path) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise FleetError(f"{where}: `{key}` must be a string", file=path)
    return value


def _paths(value: Any, path: Path, where: str, key: str) -> tuple[str, ...]:
    """File names relative to the fleet file, resolved."""
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) and v for v in items):
        raise FleetError(f"{where}: `{key}` must be a file name or a list of them", file=path)
    return tuple(str((path.parent / v).resolve()) for v in items)
