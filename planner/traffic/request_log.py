"""Generic request logs: one timestamp per request, in a CSV or Parquet file.

Numbers above 1e11 are epoch milliseconds, above 1e8 epoch seconds, otherwise seconds
relative to the start; text is ISO 8601. The time column is found by name (`TIME_COLUMNS`)
or given with `--time-column`. An LLM service's log may also give each request's tokens:
`input_tokens` (or `prompt_tokens`) and `output_tokens`, whole numbers >= 0.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from themis.common.errors import shown
from themis.planner.errors import TraceError
from themis.planner.traffic.reading import (
    PathLike,
    first_true,
    open_decompressed,
    per_request_trace,
    read_frame,
    reading_errors,
)
from themis.planner.traffic.trace import Trace

TIME_COLUMNS = ("timestamp", "time", "arrival_s", "arrival", "ts", "t", "time_s")
PROMPT_TOKEN_COLUMNS = ("input_tokens", "prompt_tokens")
OUTPUT_TOKEN_COLUMN = "output_tokens"


def read_request_log(path: PathLike, *, time_column: str | None = None) -> Trace:
    """One timestamp per request (CSV or Parquet): epoch s/ms, relative seconds or ISO 8601;
    with each request's tokens when the log has token columns."""
    path = Path(path)
    frame, column = time_frame(path, time_column)
    seconds, start = seconds_since_start(frame, column, path)
    tokens = token_columns(frame, path)
    order = np.argsort(seconds, kind="stable")
    seconds = seconds[order]
    if start is None:  # relative seconds keep their t = 0 unless some are negative
        seconds -= min(0.0, float(seconds[0]))
    prompt, output = (t[order] for t in tokens) if tokens is not None else (None, None)
    return per_request_trace(path.name, "request_log", start, seconds, prompt, output)


def token_columns(frame: pd.DataFrame, path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(prompt tokens, output tokens) per row when the log names both, as int32; None when
    it names neither. One without the other, or a cell that is not a whole number >= 0,
    is a `TraceError` naming the row."""
    lower = {str(c).lower(): c for c in frame.columns}
    prompt = next((lower[name] for name in PROMPT_TOKEN_COLUMNS if name in lower), None)
    output = lower.get(OUTPUT_TOKEN_COLUMN)
    if prompt is None and output is None:
        return None
    if prompt is None or output is None:
        missing = OUTPUT_TOKEN_COLUMN if output is None else " or ".join(PROMPT_TOKEN_COLUMNS)
        raise TraceError(f"token counts need both columns: {missing} is missing", file=path, row=1)
    out = []
    for column in (prompt, output):
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values) | (values < 0) | (values != np.floor(values)) | (values >= 2**31)
        if bad.any():
            i = first_true(bad)
            raise TraceError(f"{column} must be a whole number >= 0, got {shown(frame[column].iloc[i])}", file=path, row=i + 2)
        out.append(values.astype(np.int32))
    return out[0], out[1]


def time_frame(path: Path, time_column: str | None) -> tuple[pd.DataFrame, str]:
    """The table of a generic request log / rate series and the name of its time column."""
    with reading_errors(path), open_decompressed(path) as stream:
        parquet = stream.read(4) == b"PAR1"
    if parquet:
        with reading_errors(path):
            frame = pq.read_table(path).to_pandas()
    else:
        frame = read_frame(path, [time_column] if time_column else [])
    if frame.empty:
        raise TraceError("no rows", file=path, row=2)
    if time_column is not None:
        if time_column not in frame.columns:
            raise TraceError(f"no column {time_column!r}", option="--time-column", file=path)
        return frame, time_column
    for column in frame.columns:
        if str(column).lower() in TIME_COLUMNS:
            return frame, column
    if frame.shape[1] == 1:
        return frame, frame.columns[0]
    raise TraceError("no time column found; name it with --time-column", file=path, row=1)


def seconds_since_start(frame: pd.DataFrame, column: str, path: Path) -> tuple[np.ndarray, datetime | None]:
    """Times in seconds after `start`, the calendar time of the earliest (None: relative seconds).

    Numbers above 1e11 are epoch milliseconds, above 1e8 epoch seconds, else seconds from
    the start; text is ISO 8601 (naive stays naive).
    """
    values = frame[column]
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = pd.to_datetime(values)
    else:
        numbers = pd.to_numeric(values, errors="coerce")
        if numbers.notna().all():
            seconds = numbers.to_numpy(dtype=np.float64)
            if not np.isfinite(seconds).all():
                raise TraceError(f"{column} is not finite", file=path, row=first_true(~np.isfinite(seconds)) + 2)
            largest = np.abs(seconds)
            if largest.max() > 1e14:
                i = first_true(largest > 1e14)
                raise TraceError(f"{column}: {shown(values.iloc[i])} is neither epoch seconds nor milliseconds", file=path, row=i + 2)
            if largest.max() > 1e11:
                seconds = seconds / 1000.0
            elif seconds.min() <= 1e8:
                return seconds, None
            origin = float(seconds.min())
            return seconds - origin, datetime.fromtimestamp(origin, tz=UTC)
        if numbers.notna().any():
            i = first_true(numbers.isna().to_numpy())
            raise TraceError(f"{column} is not a number: {shown(values.iloc[i])}", file=path, row=i + 2)
        stamps = pd.to_datetime(values.astype(str), format="ISO8601", errors="coerce", utc=None) if _same_zone(values) else None
        if stamps is None:
            raise TraceError(f"{column}: mixed time zones or unreadable times", file=path, row=2)
        if stamps.isna().any():
            i = first_true(stamps.isna().to_numpy())
            raise TraceError(f"{column} is not a time: {shown(values.iloc[i])}", file=path, row=i + 2)
    naive = stamps if stamps.dt.tz is None else stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    ns = naive.to_numpy().astype("datetime64[ns]").astype(np.int64)
    origin = int(ns.min()) // 1000 * 1000  # datetime holds microseconds
    start = pd.Timestamp(origin, tz="UTC" if stamps.dt.tz is not None else None).to_pydatetime()
    return (ns - origin) / 1e9, start


def _same_zone(values: pd.Series) -> bool:
    """Whether every ISO time has an offset, or none has (pandas refuses a mixture)."""
    marked = values.astype(str).str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True)
    return bool(marked.all() or not marked.any())
