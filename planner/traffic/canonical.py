"""The canonical trace file (`themis trace convert`): Parquet with its meaning in the footer.

Arrivals (`arrival_s`) for per-request traces, with `prompt_tokens` and `output_tokens`
when the trace has them, else counts (`count`) per interval; the footer carries
`themis.schema_version`, `themis.kind` = `trace`, `themis.trace_start`, `themis.interval_s`,
`themis.intervals`, `themis.name` and `themis.source_format`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from themis.common import SCHEMA_VERSION
from themis.common.atomic import write_atomic
from themis.common.errors import InputError
from themis.common.schema import check_schema_version
from themis.planner.errors import TraceError
from themis.planner.traffic.reading import PathLike, reading_errors
from themis.planner.traffic.trace import Trace

TOKEN_COLUMNS = ("prompt_tokens", "output_tokens")


def write_trace(trace: Trace, path: PathLike) -> Path:
    """Write the canonical Parquet form: `arrival_s` per request, or `count` per interval.

    The footer carries `themis.schema_version`, `themis.kind` = `trace`, `themis.trace_start`,
    `themis.interval_s`, `themis.intervals`, `themis.name` and `themis.source_format`, so
    `load_trace` restores the same `Trace`.
    """
    if trace.arrivals_s is not None:
        columns = {"arrival_s": pa.array(trace.arrivals_s, pa.float64())}
        if trace.has_tokens:
            columns.update(prompt_tokens=pa.array(trace.prompt_tokens, pa.int32()), output_tokens=pa.array(trace.output_tokens, pa.int32()))
        table = pa.table(columns)
    else:
        table = pa.table({"count": pa.array(np.asarray(trace.counts, dtype=np.int64))})
    meta = {
        "themis.schema_version": str(SCHEMA_VERSION),
        "themis.kind": "trace",
        "themis.name": trace.name,
        "themis.source_format": trace.source_format,
        "themis.trace_start": trace.trace_start or "",
        "themis.interval_s": repr(float(trace.interval_s)),
        "themis.intervals": str(len(trace.counts)),
    }
    table = table.replace_schema_metadata({k.encode(): v.encode() for k, v in meta.items()})
    return write_atomic(path, lambda tmp: pq.write_table(table, tmp))


def read_canonical(path: PathLike) -> Trace:
    """The Parquet written by `write_trace`."""
    path = Path(path)
    with reading_errors(path):
        table = pq.read_table(path)
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    if meta.get("themis.kind") != "trace":
        raise TraceError("not a themis trace (footer has no themis.kind = trace)", file=path)
    try:
        check_schema_version(meta.get("themis.schema_version"), SCHEMA_VERSION, what="a themis trace", file=path)
    except InputError as error:
        raise TraceError(error.message, file=path) from None
    try:
        interval_s = float(meta["themis.interval_s"])
        intervals = int(meta["themis.intervals"])
        start = datetime.fromisoformat(meta["themis.trace_start"]) if meta.get("themis.trace_start") else None
    except (KeyError, ValueError) as exc:
        raise TraceError(f"damaged trace metadata ({exc})", file=path) from None
    name, fmt = meta.get("themis.name", path.name), meta.get("themis.source_format", "themis")
    if "arrival_s" in table.column_names:
        arrivals = table.column("arrival_s").to_numpy().astype(np.float64)
        counts = np.bincount((arrivals // interval_s).astype(np.int64), minlength=intervals)[:intervals]
        tokens = [table.column(c).to_numpy().astype(np.int32) for c in TOKEN_COLUMNS if c in table.column_names]
        if len(tokens) == 1:
            raise TraceError("a themis trace with tokens needs both prompt_tokens and output_tokens", file=path)
        return Trace(name, fmt, start, interval_s, counts, arrivals, *tokens)
    if "count" not in table.column_names:
        raise TraceError("a themis trace needs an 'arrival_s' or 'count' column", file=path)
    return Trace(name, fmt, start, interval_s, table.column("count").to_numpy().astype(np.int64))
