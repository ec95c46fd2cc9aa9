"""The profile table: one Parquet row per measured cell, environment in the footer.

This module is the contract between the profiler (writer) and the planner and reports
(readers), so it imports neither torch nor anything from the planner. Files are rewritten
atomically after every cell, so a killed run keeps every finished cell.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from themis.common import SCHEMA_VERSION
from themis.common.atomic import write_atomic
from themis.profiler.errors import ProfileFileError

KIND = "profile"
STATUSES = ("ok", "oom", "error")

COLUMNS: dict[str, pa.DataType] = {
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
"""Column name -> Arrow type, in file order (the metric vocabulary of SPEC)."""

SCHEMA = pa.schema([pa.field(name, kind) for name, kind in COLUMNS.items()])

CELL_KEY = ("model", "device_kind", "device_id", "cores", "batch_size", "dtype", "input_shape")
"""Columns that identify a cell: `--resume` skips a cell whose key is already in the file."""

ENVIRONMENT_KEYS = (
    "host", "cpu_model", "gpu_name", "gpu_uuid", "driver", "torch_version", "themis_version", "created_at",
)


def to_table(rows: Iterable[Mapping[str, Any]], environment: Mapping[str, Any]) -> pa.Table:
    """Build the Arrow table (schema order, footer metadata) from cell records."""
    rows = list(rows)
    columns = {name: [row.get(name) for row in rows] for name in COLUMNS}
    table = pa.table(columns, schema=SCHEMA)
    metadata = {
        b"themis.schema_version": str(SCHEMA_VERSION).encode(),
        b"themis.kind": KIND.encode(),
        b"themis.environment": json.dumps(dict(environment), sort_keys=True).encode(),
    }
    return table.replace_schema_metadata(metadata)


def write_profile(path: str | Path, rows: Iterable[Mapping[str, Any]], environment: Mapping[str, Any]) -> Path:
    """Write the whole profile to `path` atomically (temporary file, then rename)."""
    table = to_table(rows, environment)
    return write_atomic(path, lambda tmp: pq.write_table(table, tmp))


def read_profile(path: str | Path) -> pd.DataFrame:
    """Read and validate a profile; `df.attrs` holds `environment` and `schema_version`.

    Raises `ProfileFileError` (an `InputError`) when the file is missing, is not Parquet,
    is not a themis profile, or lacks a column.
    """
    table, environment, version = _read_table(Path(path))
    frame = table.select(list(COLUMNS)).to_pandas()
    frame.attrs["environment"] = environment
    frame.attrs["schema_version"] = version
    return frame


def read_environment(path: str | Path) -> dict[str, Any]:
    """Only the footer's environment (host, CPU, GPU, versions, created_at)."""
    return _read_table(Path(path))[1]


def profile_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a profile frame as plain dicts (NaN kept), ready for `write_profile`."""
    return frame[list(COLUMNS)].to_dict(orient="records")


def _read_table(path: Path) -> tuple[pa.Table, dict[str, Any], int]:
    table, footer, version = read_themis_parquet(path, KIND, "profile", COLUMNS)
    bad = set(table.column("status").to_pylist()) - set(STATUSES)
    if bad:
        raise ProfileFileError(f"unknown status value(s) {', '.join(sorted(map(str, bad)))}", file=path)
    return table, footer.get("environment", {}), version


def read_themis_parquet(path: Path, kind: str, what: str, columns: Iterable[str]) -> tuple[pa.Table, dict[str, Any], int]:
    """Read a themis Parquet file of `kind` (`themis.kind` in its footer) that has `columns`.

    Returns the table, its footer's other `themis.*` entries decoded from JSON (`environment`,
    ...) and its schema_version; anything wrong is a `ProfileFileError` naming `what` it is.
    """
    if not path.is_file():
        raise ProfileFileError(f"no such {what} file", file=path)
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise ProfileFileError(f"not a readable Parquet file ({_first_line(exc)})", file=path) from None
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
        raise ProfileFileError(f"damaged {what} footer ({_first_line(exc)})", file=path) from None
    if version > SCHEMA_VERSION:
        raise ProfileFileError(f"{what} schema_version {version} is newer than this themis ({SCHEMA_VERSION})", file=path)
    missing = [name for name in columns if name not in table.column_names]
    if missing:
        raise ProfileFileError(f"{what} lacks column(s) {', '.join(missing)}", file=path)
    return table, footer, version


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
