"""`load_trace`: detect a file's format from its first bytes and header, and read it.

One loader module per format; this module only dispatches, so a new format is one module
and one entry here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow.parquet as pq

from themis.planner.choices import TRACE_FORMATS
from themis.planner.errors import TraceError
from themis.planner.traffic.azure_functions_2019 import ID_COLUMNS_2019, read_azure_functions_2019
from themis.planner.traffic.azure_functions_2021 import COLUMNS_2021, read_azure_functions_2021
from themis.planner.traffic.azure_llm import COLUMNS_LLM, read_azure_llm
from themis.planner.traffic.canonical import read_canonical
from themis.planner.traffic.rate_series import read_rate_series
from themis.planner.traffic.reading import PathLike, open_decompressed, parse_header, reading_errors
from themis.planner.traffic.request_log import TIME_COLUMNS, read_request_log
from themis.planner.traffic.trace import Trace

FORMATS = TRACE_FORMATS
"""Names accepted by `load_trace(format=...)` and `--format`."""


def load_trace(
    path: PathLike | Sequence[PathLike],
    *,
    format: str | None = None,
    function: str | None = None,
    app: str | None = None,
    top: int | None = None,
    time_column: str | None = None,
) -> Trace:
    """Read a trace file (or several day files of the 2019 layout) into a `Trace`.

    `format` forces one of `FORMATS` (default: detected from the header). `function`,
    `app` and `top` select Azure Functions traffic (one function, one app, the N busiest
    functions; default the sum of all). `time_column` names the timestamp column of a
    generic request log or rate series.
    """
    paths = [Path(path)] if isinstance(path, (str, Path)) else [Path(p) for p in path]
    if not paths:
        raise TraceError("no trace file given", option="TRACE")
    if top is not None and top < 1:
        raise TraceError(f"must be at least 1, got {top}", option="--top")
    formats = {format or detect_format(p, time_column=time_column) for p in paths}
    if len(formats) > 1:
        raise TraceError(f"files of different formats cannot be combined: {', '.join(sorted(formats))}", file=paths[1])
    fmt = formats.pop()
    if fmt not in FORMATS:
        raise TraceError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}", option="--format")
    if len(paths) > 1 and fmt != "azure_functions_2019":
        raise TraceError("only Azure Functions 2019 day files can be combined into one timeline", file=paths[1])
    selects = function is not None or app is not None or top is not None
    if selects and fmt not in ("azure_functions_2019", "azure_functions_2021"):
        option = "--function" if function is not None else "--app" if app is not None else "--top"
        raise TraceError(f"only applies to Azure Functions traces, not {fmt}", option=option)
    if fmt == "azure_functions_2019":
        return read_azure_functions_2019(paths, function=function, app=app, top=top)
    if fmt == "azure_functions_2021":
        return read_azure_functions_2021(paths[0], function=function, app=app, top=top)
    if fmt == "azure_llm":
        return read_azure_llm(paths[0])
    if fmt == "rate_series":
        return read_rate_series(paths[0], time_column=time_column)
    if fmt == "themis":
        return read_canonical(paths[0])
    return read_request_log(paths[0], time_column=time_column)


def detect_format(path: PathLike, *, time_column: str | None = None) -> str:
    """The format of `path`, from its first bytes and header line."""
    path = Path(path)
    with reading_errors(path), open_decompressed(path) as stream:
        head = stream.read(4)
        if head == b"PAR1":
            return "themis" if _parquet_kind(path) == "trace" else _detect_columns(path, _parquet_columns(path), time_column)
        header = parse_header(path, head + stream.readline(1 << 20))
    return _detect_columns(path, header, time_column)


def _detect_columns(path: Path, header: list[str], time_column: str | None) -> str:
    names = set(header)
    lower = {c.lower() for c in header}
    other = next((d for d in ";\t|" if len(header) == 1 and d in header[0]), None)
    if other is not None:
        raise TraceError(f"the header is separated by {other!r}; the delimiter must be a comma", file=path, row=1)
    if set(ID_COLUMNS_2019) <= names:
        return "azure_functions_2019"
    if set(COLUMNS_2021) <= names:
        return "azure_functions_2021"
    if set(COLUMNS_LLM) <= names:
        return "azure_llm"
    has_time = (time_column in names) if time_column else bool(lower & set(TIME_COLUMNS)) or len(header) == 1
    if has_time and lower & {"rate", "count"} and len(header) > 1:
        return "rate_series"
    if has_time:
        return "request_log"
    shown = ",".join(header[:6]) + (",..." if len(header) > 6 else "")
    raise TraceError(
        f"unrecognised trace header '{shown}' (expected an Azure layout, a time column or time,rate/count; "
        "check the delimiter is a comma, or pass --format/--time-column)",
        file=path,
        row=1,
    )


def _parquet_kind(path: Path) -> str | None:
    with reading_errors(path):
        meta = pq.read_schema(path).metadata or {}
    kind = meta.get(b"themis.kind")
    return kind.decode() if kind else None


def _parquet_columns(path: Path) -> list[str]:
    with reading_errors(path):
        return list(pq.read_schema(path).names)
