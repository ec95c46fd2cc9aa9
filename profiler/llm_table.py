"""The LLM profile table: one Parquet row per measured (phase, batch, tokens) cell.

The contract between whatever measured an LLM (`themis.profiler.llm` on this machine, or
a conversion of published measurements) and the planner's iteration-time fit
(`themis.planner.llm.iteration`). Like the batch profile table it imports neither torch
nor the planner, is written atomically, and carries `themis.schema_version`,
`themis.kind` (`llm_profile`) and the environment in its footer, plus `themis.llm`: what
the rows leave out and how to fill it in (for published profiles: the attention estimate,
the model's shape and the source).

A row is one of two phases:
- `prefill`: `batch_size` prompts of `prompt_tokens` each, from an empty KV cache
  (`context_tokens` = 0);
- `decode`: one step of `batch_size` sequences that each have `context_tokens` tokens
  cached (`prompt_tokens` = 0).
`attention` says whether the times include the attention kernel (`included`, as measured
here) or not (`excluded`, as in the published per-operator profiles, where the planner adds
an estimate kept as separate terms).
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
from themis.profiler.table import read_themis_parquet

KIND = "llm_profile"
STATUSES = ("ok", "oom", "error")
PHASES = ("prefill", "decode")
PROVENANCES = ("measured", "published")
ATTENTION = ("included", "excluded")

COLUMNS: dict[str, pa.DataType] = {
    "model": pa.string(),
    "device_kind": pa.string(),
    "device_name": pa.string(),
    "device_id": pa.string(),
    "cores": pa.int64(),
    "dtype": pa.string(),
    "phase": pa.string(),
    "batch_size": pa.int64(),
    "prompt_tokens": pa.int64(),
    "context_tokens": pa.int64(),
    "p50_ms": pa.float64(),
    "p90_ms": pa.float64(),
    "p99_ms": pa.float64(),
    "mean_ms": pa.float64(),
    "std_ms": pa.float64(),
    "samples": pa.int64(),
    "status": pa.string(),
    "error": pa.string(),
    "provenance": pa.string(),
    "attention": pa.string(),
}
"""Column name -> Arrow type, in file order."""

SCHEMA = pa.schema([pa.field(name, kind) for name, kind in COLUMNS.items()])

CELL_KEY = ("model", "device_kind", "device_id", "cores", "dtype", "phase", "batch_size", "prompt_tokens", "context_tokens")
"""Columns that identify a cell."""

_CHOICES = {"status": STATUSES, "phase": PHASES, "provenance": PROVENANCES, "attention": ATTENTION}


def to_table(rows: Iterable[Mapping[str, Any]], environment: Mapping[str, Any], llm: Mapping[str, Any] | None = None) -> pa.Table:
    """The Arrow table (schema order, footer metadata) of `rows`."""
    rows = list(rows)
    table = pa.table({name: [row.get(name) for row in rows] for name in COLUMNS}, schema=SCHEMA)
    return table.replace_schema_metadata({
        b"themis.schema_version": str(SCHEMA_VERSION).encode(),
        b"themis.kind": KIND.encode(),
        b"themis.environment": json.dumps(dict(environment), sort_keys=True).encode(),
        b"themis.llm": json.dumps(dict(llm or {}), sort_keys=True).encode(),
    })


def write_llm_profile(
    path: str | Path, rows: Iterable[Mapping[str, Any]], environment: Mapping[str, Any], llm: Mapping[str, Any] | None = None
) -> Path:
    """Write the whole LLM profile to `path` atomically (temporary file, then rename)."""
    table = to_table(rows, environment, llm)
    return write_atomic(path, lambda tmp: pq.write_table(table, tmp))


def read_llm_profile(path: str | Path) -> pd.DataFrame:
    """Read and validate an LLM profile; `df.attrs` holds `environment`, `llm` and `schema_version`.

    Raises `ProfileFileError` (an `InputError`) for a missing, unreadable or foreign file,
    a missing column or a value outside its vocabulary.
    """
    path = Path(path)
    table, footer, version = read_themis_parquet(path, KIND, "LLM profile", SCHEMA_VERSION, lambda version: COLUMNS)
    for column, allowed in _CHOICES.items():
        bad = set(table.column(column).to_pylist()) - set(allowed)
        if bad:
            values = ", ".join(sorted(map(str, bad)))
            raise ProfileFileError(f"unknown {column} value(s) {values} (allowed: {', '.join(allowed)})", file=path)
    frame = table.select(list(COLUMNS)).to_pandas()
    frame.attrs.update(environment=footer.get("environment", {}), llm=footer.get("llm", {}), schema_version=version)
    return frame
