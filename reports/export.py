"""Write any result to .json, .csv or .parquet, chosen by the file's suffix, atomically.

Parquet files carry `schema_version` and the result kind in their footer metadata, so a
reader can tell a plan table from a simulation table without guessing, plus whatever the
result's optional `parquet_metadata()` adds (e.g. a replay's settings).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from themis.common import SCHEMA_VERSION
from themis.common.atomic import write_atomic, write_text_atomic
from themis.common.errors import InputError

SUFFIXES = (".json", ".csv", ".parquet")


def export(result: Any, path: str | Path) -> Path:
    """Write `result` (with `to_dict()` and, for tables, `to_frame()`) to `path`."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"unknown format {suffix or '(no suffix)'}; use one of {', '.join(SUFFIXES)}", option="--out", file=path)
    if suffix == ".json":
        return write_text_atomic(path, json.dumps(result.to_dict(), indent=2, default=_plain) + "\n")
    if not hasattr(result, "to_frame"):
        raise InputError("this result has no table form; use .json", option="--out", file=path)
    frame = result.to_frame()
    if suffix == ".csv":
        return write_atomic(path, lambda tmp: frame.to_csv(tmp, index=False))
    kind = result.to_dict().get("kind", type(result).__name__.lower())
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta.update({b"themis.schema_version": str(SCHEMA_VERSION).encode(), b"themis.kind": str(kind).encode()})
    if hasattr(result, "parquet_metadata"):  # settings a result wants kept beside its rows
        meta.update({str(k).encode(): str(v).encode() for k, v in result.parquet_metadata().items()})
    table = table.replace_schema_metadata(meta)
    return write_atomic(path, lambda tmp: pq.write_table(table, tmp))


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)
