"""The profile table: one Parquet row per measured cell, environment in the footer.

This module is the contract between the profiler (writer) and the planner and reports
(readers), so it imports neither torch nor anything from the planner. Files are rewritten
atomically after every cell, so a killed run keeps every finished cell.

Schema versions (footer `themis.schema_version`):
- 1: the summary columns only (`V1_COLUMNS`), statuses ok/oom/error.
- 2: adds how each cell was measured (processes, windows, stability, contention evidence,
  CPU limit mode, sanity flag) and every timed call (`samples_ms`, `process_samples`);
  statuses add `unstable` and `contended`.
`read_profile` reads both; a version-1 file gets the version-2 columns filled with
"not recorded" values (`V1_DEFAULTS`), so readers see one shape.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from themis.common.atomic import write_atomic
from themis.common.errors import InputError, first_line
from themis.common.schema import check_schema_version
from themis.profiler.errors import ProfileFileError

KIND = "profile"
PROFILE_SCHEMA_VERSION = 2
"""Version of the profile contract this themis writes (older versions are read too)."""

STATUSES = ("ok", "oom", "error", "unstable", "contended")
MEASURED_STATUSES = ("ok", "unstable", "contended")
"""Statuses of a cell that holds latencies; only `ok` is trusted without `--allow-unstable`."""

V1_COLUMNS: dict[str, pa.DataType] = {
    "model": pa.string(),
    "device_kind": pa.string(),
    "device_name": pa.string(),
    "device_id": pa.string(),
    "cores": pa.int64(),
    "batch_size": pa.int64(),
    "dtype": pa.string(),
    "input_shape": pa.string(),
    "p50_ms": pa.float64(),
    "p90_ms": pa.float64(),
    "p95_ms": pa.float64(),
    "p99_ms": pa.float64(),
    "mean_ms": pa.float64(),
    "std_ms": pa.float64(),
    "min_ms": pa.float64(),
    "max_ms": pa.float64(),
    "samples": pa.int64(),
    "throughput_ips": pa.float64(),
    "peak_memory_mb": pa.float64(),
    "status": pa.string(),
    "error": pa.string(),
}

MEASUREMENT_COLUMNS: dict[str, pa.DataType] = {
    "cpu_limit": pa.string(),  # "pin" (affinity), "quota" (CFS quota), "" on a GPU
    "processes": pa.int64(),  # worker processes whose calls are pooled
    "windows": pa.int64(),  # accepted measurement windows, all processes
    "window_spread": pa.float64(),  # (max - min) / median of the last k window medians, worst process
    "process_spread": pa.float64(),  # (max - min) / median of the per-process medians
    "cpu_share": pa.float64(),  # worker CPU time / (wall time x threads)
    "runqueue_wait": pa.float64(),  # share of the worker threads' runnable time spent waiting for a CPU
    "other_load": pa.float64(),  # other processes' CPU time on the worker's CPUs / (wall x those CPUs)
    "steal": pa.float64(),  # hypervisor steal time on the worker's CPUs / (wall x those CPUs)
    "cpu_pressure": pa.float64(),  # /proc/pressure/cpu `some` total over the cell / wall
    "throttled_s": pa.float64(),  # CFS throttling of the worker's cgroup during the cell (quota)
    "contended_windows": pa.int64(),  # windows discarded as contended and measured again after a back-off
    "sanity": pa.string(),  # "", "remeasured", "more_cores_slower", "smaller_batch_slower"
    "samples_ms": pa.list_(pa.float64()),  # every timed call, process by process
    "process_samples": pa.list_(pa.int64()),  # calls per process: samples_ms split in this order
}

COLUMNS: dict[str, pa.DataType] = {**V1_COLUMNS, **MEASUREMENT_COLUMNS}
"""Column name -> Arrow type, in file order (the metric vocabulary of SPEC)."""

RAW_COLUMNS = ("samples_ms", "process_samples")
"""List columns kept in the Parquet file only (not in `--json` or CSV output)."""

V1_DEFAULTS: dict[str, Any] = {
    "cpu_limit": "pin", "processes": 1, "windows": 0, "window_spread": math.nan, "process_spread": math.nan,
    "cpu_share": math.nan, "runqueue_wait": math.nan, "other_load": math.nan, "steal": math.nan,
    "cpu_pressure": math.nan, "throttled_s": 0.0, "contended_windows": 0, "sanity": "", "samples_ms": [], "process_samples": [],
}
"""What a version-1 file did not record: one process pinned by affinity, no raw samples."""

SCHEMA = pa.schema([pa.field(name, kind) for name, kind in COLUMNS.items()])

CELL_KEY = ("model", "device_kind", "device_id", "cores", "batch_size", "dtype", "input_shape")
"""Columns that identify a cell: `--resume` skips a cell whose key is already in the file."""

ENVIRONMENT_KEYS = (
    "host", "cpu_model", "gpu_name", "gpu_uuid", "driver", "torch_version", "themis_version", "created_at",
)


def to_table(
    rows: Iterable[Mapping[str, Any]], environment: Mapping[str, Any], measurement: Mapping[str, Any] | None = None
) -> pa.Table:
    """Build the Arrow table (schema order, footer metadata) from cell records.

    A row may lack the measurement columns (a cell that never ran, e.g. skipped after an
    out-of-memory batch); they get the "not recorded" values.
    """
    rows = list(rows)
    blank = {**V1_DEFAULTS, "cpu_limit": "", "processes": 0}
    columns = {name: [_plain(row.get(name, blank.get(name))) for row in rows] for name in COLUMNS}
    table = pa.table(columns, schema=SCHEMA)
    metadata = {
        b"themis.schema_version": str(PROFILE_SCHEMA_VERSION).encode(),
        b"themis.kind": KIND.encode(),
        b"themis.environment": json.dumps(dict(environment), sort_keys=True).encode(),
        b"themis.measurement": json.dumps(dict(measurement or {}), sort_keys=True).encode(),
    }
    return table.replace_schema_metadata(metadata)


def write_profile(
    path: str | Path, rows: Iterable[Mapping[str, Any]], environment: Mapping[str, Any], measurement: Mapping[str, Any] | None = None
) -> Path:
    """Write the whole profile to `path` atomically (temporary file, then rename).

    `measurement` (footer `themis.measurement`) records how it was measured: CPU limit
    mode, processes, budget, stability and contention settings, seed.
    """
    table = to_table(rows, environment, measurement)
    return write_atomic(path, lambda tmp: pq.write_table(table, tmp))


def read_profile(path: str | Path) -> pd.DataFrame:
    """Read and validate a profile; `df.attrs` holds `environment`, `measurement` and `schema_version`.

    Raises `ProfileFileError` (an `InputError`) when the file is missing, is not Parquet,
    is not a themis profile, or lacks a column of its schema version.
    """
    table, environment, version = _read_table(Path(path))
    frame = table.select([name for name in COLUMNS if name in table.column_names]).to_pandas()
    for name in COLUMNS:
        if name not in frame.columns:  # a version-1 file: what it did not record
            frame[name] = [copy.copy(V1_DEFAULTS[name]) for _ in range(len(frame))]
    if version < 2:
        frame["cpu_limit"] = ["pin" if kind == "cpu" else "" for kind in frame["device_kind"]]
    frame = frame[list(COLUMNS)]
    frame.attrs["environment"] = environment
    frame.attrs["measurement"] = _footer_json(table, b"themis.measurement", path)
    frame.attrs["schema_version"] = version
    return frame


def read_environment(path: str | Path) -> dict[str, Any]:
    """Only the footer's environment (host, CPU, GPU, versions, created_at)."""
    return _read_table(Path(path))[1]


def profile_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a profile frame as plain dicts (NaN kept), ready for `write_profile`."""
    return frame[list(COLUMNS)].to_dict(orient="records")


def summary_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The profile without its raw-sample list columns: what `--json` and CSV carry."""
    return frame.drop(columns=[c for c in RAW_COLUMNS if c in frame.columns])


def _plain(value: Any) -> Any:
    """numpy arrays (list cells read back from Parquet) as lists, so Arrow takes them."""
    return value.tolist() if hasattr(value, "tolist") and not isinstance(value, (int, float, str)) else value


def _footer_json(table: pa.Table, key: bytes, path: Path) -> dict[str, Any]:
    try:
        return json.loads((table.schema.metadata or {}).get(key, b"{}"))
    except ValueError as exc:
        raise ProfileFileError(f"damaged profile footer ({first_line(exc)})", file=path) from None


def _read_table(path: Path) -> tuple[pa.Table, dict[str, Any], int]:
    table, footer, version = read_themis_parquet(
        path, KIND, "profile", PROFILE_SCHEMA_VERSION, lambda version: COLUMNS if version >= 2 else V1_COLUMNS
    )
    bad = set(table.column("status").to_pylist()) - set(STATUSES)
    if bad:
        raise ProfileFileError(f"unknown status value(s) {', '.join(sorted(map(str, bad)))}", file=path)
    return table, footer.get("environment", {}), version


def read_themis_parquet(
    path: Path, kind: str, what: str, newest_version: int, columns: Callable[[int], Iterable[str]]
) -> tuple[pa.Table, dict[str, Any], int]:
    """Read a themis Parquet file of `kind` (`themis.kind` in its footer), of a schema version
    up to `newest_version`, that has the `columns(version)` its version must have.

    Returns the table, its footer's other `themis.*` entries decoded from JSON (`environment`,
    ...) and its schema_version; anything wrong is a `ProfileFileError` naming `what` it is.
    """
    if not path.is_file():
        raise ProfileFileError(f"no such {what} file", file=path)
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise ProfileFileError(f"not a readable Parquet file ({first_line(exc)})", file=path) from None
    metadata = table.schema.metadata or {}
    if metadata.get(b"themis.kind") != kind.encode():
        raise ProfileFileError(f"not a themis {what} (footer has no themis.kind={kind})", file=path)
    try:
        version = int(metadata[b"themis.schema_version"])
        footer = {
            key.decode().removeprefix("themis."): json.loads(value)
            for key, value in metadata.items()
            if key.startswith(b"themis.") and key not in (b"themis.kind", b"themis.schema_version")
        }
    except (KeyError, ValueError) as exc:
        raise ProfileFileError(f"damaged {what} footer ({first_line(exc)})", file=path) from None
    try:
        version = check_schema_version(version, newest_version, what=f"a themis {what}", file=path)
    except InputError as exc:
        raise ProfileFileError(exc.message, file=path) from None
    missing = [name for name in columns(version) if name not in table.column_names]
    if missing:
        raise ProfileFileError(f"{what} lacks column(s) {', '.join(missing)}", file=path)
    return table, footer, version
