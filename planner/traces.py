"""Traffic traces: every supported format becomes one `Trace` (SPEC, "Data flow").

A `Trace` always has a rate series (request counts per fixed interval) and, where the
source records single requests, their arrival times. Times are seconds from the start of
the trace; `start` keeps the calendar time of t = 0 when the source has one.

Loaders, one per format (`load_trace` detects which from the header):

- `azure_functions_2019`: per-minute counts per function, the original layout
  (`HashOwner,HashApp,HashFunction,Trigger,1..1440`) or the invitro excerpt
  (`HashFunction,HashOwner,HashApp,minute_1..minute_1440`); several day files form one
  timeline. Native interval 60 s, no calendar time (the files do not record the day).
- `azure_functions_2021`: one row per invocation (`app,func,end_timestamp,duration`,
  seconds); arrival = end_timestamp - duration.
- `azure_llm`: Azure LLM inference 2023/2024 (`TIMESTAMP,ContextTokens,GeneratedTokens`),
  read in streaming batches so a 17-million-row file stays memory bounded.
- `request_log`: any CSV/Parquet with one timestamp per request (epoch s, epoch ms,
  relative seconds or ISO 8601).
- `rate_series`: `time,rate` (requests/s) or `time,count` (requests per row's interval).
- `themis`: the canonical Parquet that `write_trace` produces.

Per-request formats keep every arrival exactly and bin `counts` per 1 s
(`PER_REQUEST_INTERVAL_S`). Files may be `.gz`, `.xz`, `.bz2` or `.zip` (one member).
Errors are `TraceError`s naming the file and the row (the line number, header = row 1).
"""

from __future__ import annotations

import bz2
import contextlib
import csv
import gzip
import lzma
import re
import warnings
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from themis.common import SCHEMA_VERSION
from themis.common.atomic import write_atomic
from themis.planner.choices import TRACE_FORMATS
from themis.planner.errors import TraceError


@dataclass(frozen=True)
class Trace:
    """A request trace in canonical form.

    `counts[i]` requests arrived in [i * interval_s, (i + 1) * interval_s). When the source
    has per-request timestamps, `arrivals_s` holds them sorted (and `counts` is their
    histogram); otherwise it is None and `request_arrivals` synthesises them.
    """

    name: str
    source_format: str
    start: datetime | None
    interval_s: float
    counts: np.ndarray
    arrivals_s: np.ndarray | None = None

    @property
    def duration_s(self) -> float:
        return float(len(self.counts) * self.interval_s)

    @property
    def requests(self) -> int:
        return int(self.counts.sum())

    @property
    def rates_rps(self) -> np.ndarray:
        """Mean request rate of every native interval, requests per second."""
        return self.counts / self.interval_s

    @property
    def trace_start(self) -> str | None:
        """`start` as ISO 8601, the form plans and simulations carry."""
        return self.start.isoformat() if self.start is not None else None

    def request_arrivals(self, seed: int = 0) -> np.ndarray:
        """Sorted arrival times in seconds: the real ones, or a seeded Poisson process.

        Without per-request timestamps, each interval's count is spread as a Poisson
        process conditioned on that count (uniform points), so totals per interval are
        exact and a given seed always gives the same arrivals.
        """
        if self.arrivals_s is not None:
            return self.arrivals_s
        rng = np.random.default_rng(seed)
        counts = self.counts.astype(np.int64)
        starts = np.repeat(np.arange(len(counts)) * self.interval_s, counts)
        return np.sort(starts + rng.uniform(0.0, self.interval_s, size=starts.size))

    def rate_series(self, interval_s: float) -> np.ndarray:
        """Mean rate (rps) per interval of `interval_s` seconds (a multiple of the native one,
        or any length when per-request arrivals are known)."""
        n = int(np.ceil(self.duration_s / interval_s - 1e-9))
        if self.arrivals_s is not None:
            counts = np.bincount((self.arrivals_s // interval_s).astype(np.int64), minlength=n)[:n]
            return counts / interval_s
        ratio = interval_s / self.interval_s
        if ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
            raise ValueError(
                f"interval {interval_s:g} s must be a multiple of the trace's {self.interval_s:g} s "
                "(this trace has no per-request times)"
            )
        k = int(round(ratio))
        padded = np.zeros(n * k)
        padded[: len(self.counts)] = self.counts
        return padded.reshape(n, k).sum(axis=1) / interval_s

    def peak_rates(self, interval_s: float, window_s: float = 1.0) -> np.ndarray:
        """Peak rate (rps) inside each interval of `interval_s`: the busiest `window_s`
        window (or the native interval, if that is coarser). Capacity must carry this."""
        fine_s = max(window_s, self.interval_s) if self.arrivals_s is None else window_s
        fine = self.rate_series(fine_s)
        per = int(round(interval_s / fine_s))
        if per < 1 or abs(interval_s / fine_s - per) > 1e-9:
            raise ValueError(f"interval {interval_s:g} s must be a multiple of {fine_s:g} s")
        n = int(np.ceil(len(fine) / per))
        padded = np.zeros(n * per)
        padded[: len(fine)] = fine
        return padded.reshape(n, per).max(axis=1)

    def scaled(self, factor: float, seed: int = 0) -> Trace:
        """The same shape of traffic at `factor` times the volume (for sizing experiments).

        Counts are scaled and rounded; per-request arrivals are thinned (factor < 1) or
        dropped so that `request_arrivals` re-synthesises them (factor > 1).
        """
        rng = np.random.default_rng(seed)
        if self.arrivals_s is not None and factor <= 1.0:
            kept = self.arrivals_s[rng.random(self.arrivals_s.size) < factor]
            counts = np.bincount((kept // self.interval_s).astype(np.int64), minlength=len(self.counts))
            return replace(self, counts=counts[: len(self.counts)], arrivals_s=kept)
        counts = np.round(self.counts * factor).astype(np.int64)
        return replace(self, counts=counts, arrivals_s=None)

    def window(self, t_start_s: float, t_end_s: float) -> Trace:
        """The part of the trace in [t_start_s, t_end_s), re-based to start at 0."""
        first = int(t_start_s // self.interval_s)
        last = int(np.ceil(t_end_s / self.interval_s))
        arrivals = None
        if self.arrivals_s is not None:
            a = self.arrivals_s
            arrivals = a[(a >= first * self.interval_s) & (a < last * self.interval_s)] - first * self.interval_s
        start = None
        if self.start is not None:
            start = self.start + timedelta(seconds=first * self.interval_s)
        return replace(self, start=start, counts=self.counts[first:last].copy(), arrivals_s=arrivals)


FORMATS = TRACE_FORMATS
"""Names accepted by `load_trace(format=...)` and `--format`."""

PER_REQUEST_INTERVAL_S = 1.0
"""Bin width of `counts` for formats that record single requests (arrivals stay exact)."""

BINCOUNT_SLICE = 1 << 22
"""Arrivals binned per slice when counting, so the temporary stays at 32 MB on huge traces."""
MAX_PER_REQUEST_SPAN_S = 100 * 86_400.0
"""Longest per-request trace accepted (its 1 s counts then take about 70 MB)."""
MAX_COUNT = 1e15
"""Largest request count per interval accepted (exact in float64 and int64)."""
MINUTE_S = 60.0
STREAM_BLOCK_BYTES = 4 << 20
"""Bytes per streaming CSV batch for the LLM layout: bounds memory on 17-million-row files
(arrow's read-ahead holds a few blocks: 16 MB blocks cost about 0.5 GB, 4 MB about 0.15 GB)."""

TIME_COLUMNS = ("timestamp", "time", "arrival_s", "arrival", "ts", "t", "time_s")
ID_COLUMNS_2019 = ("HashOwner", "HashApp", "HashFunction")
COLUMNS_2021 = ("app", "func", "end_timestamp", "duration")
COLUMNS_LLM = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
_MINUTE = re.compile(r"^(?:minute_)?(\d+)$")
_DAY = re.compile(r"d(\d+)", re.I)

PathLike = str | Path


# --------------------------------------------------------------------------- public API


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


def load_traces(paths: Sequence[PathLike], **options: Any) -> Trace:
    """Several files forming one timeline (2019 day files, put in day order): `load_trace(list)`."""
    return load_trace(list(paths), **options)


def detect_format(path: PathLike, *, time_column: str | None = None) -> str:
    """The format of `path`, from its first bytes and header line."""
    path = Path(path)
    with _reading(path), _open(path) as stream:
        head = stream.read(4)
        if head == b"PAR1":
            return "themis" if _parquet_kind(path) == "trace" else _detect_columns(path, _parquet_columns(path), time_column)
        header = _header(path, head + stream.readline(1 << 20))
    return _detect_columns(path, header, time_column)


def write_trace(trace: Trace, path: PathLike) -> Path:
    """Write the canonical Parquet form: `arrival_s` per request, or `count` per interval.

    The footer carries `themis.schema_version`, `themis.kind` = `trace`, `themis.trace_start`,
    `themis.interval_s`, `themis.intervals`, `themis.name` and `themis.source_format`, so
    `load_trace` restores the same `Trace`.
    """
    if trace.arrivals_s is not None:
        table = pa.table({"arrival_s": pa.array(trace.arrivals_s, pa.float64())})
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


# --------------------------------------------------------------------------- formats


def read_azure_functions_2019(
    paths: Sequence[PathLike], *, function: str | None = None, app: str | None = None, top: int | None = None
) -> Trace:
    """Per-minute counts of the 2019 layouts; several day files join into one timeline.

    Day files are put in day order by the `dNN` in their names (given order otherwise). A
    function absent from a day counts 0 there.
    """
    paths = [Path(p) for p in paths]
    if len(paths) > 1 and all(_DAY.search(p.name) for p in paths):
        paths = sorted(paths, key=lambda p: int(_DAY.findall(p.name)[-1]))
    days = [_read_functions_day(p) for p in paths]
    offset = 0
    for day in days:
        day.columns = range(offset, offset + day.shape[1])
        offset += day.shape[1]
    table = days[0] if len(days) == 1 else pd.concat(days, axis=1).fillna(0).astype(np.int64)
    table = _select_functions(table, paths[0], function=function, app=app, top=top)
    counts = table.to_numpy(dtype=np.int64).sum(axis=0)
    return Trace(_name(paths, function, app, top), "azure_functions_2019", None, MINUTE_S, counts)


def read_azure_functions_2021(
    path: PathLike, *, function: str | None = None, app: str | None = None, top: int | None = None
) -> Trace:
    """One row per invocation; arrival = end_timestamp - duration (seconds), sorted.

    Times are already seconds from the trace's start; an arrival before 0 (a duration
    longer than its end time) moves t = 0 back to it.
    """
    path = Path(path)
    frame = _read_frame(path, COLUMNS_2021, dtype={"app": str, "func": str})
    _require_filled(frame, path, ["app", "func"])
    end_s = _numbers(frame, "end_timestamp", path)
    duration_s = _numbers(frame, "duration", path, minimum=0.0)
    # the 2021 schema has no owner: the app stands in for it, so 2019's selection code applies
    table = frame.assign(arrival_s=end_s - duration_s, owner=frame["app"]).set_index(["owner", "app", "func"])
    table.index.names = ID_COLUMNS_2019
    if function is not None or app is not None or top is not None:
        per_function = table.groupby(level=[0, 1, 2]).size().to_frame(0)
        chosen = _select_functions(per_function, path, function=function, app=app, top=top).index
        table = table[table.index.isin(chosen)]
    arrivals = np.sort(table["arrival_s"].to_numpy(dtype=np.float64))
    arrivals -= min(0.0, float(arrivals[0]))
    return _per_request_trace(_name([path], function, app, top), "azure_functions_2021", None, arrivals)


def read_azure_llm(path: PathLike) -> Trace:
    """The Azure LLM inference layout (2023 naive, 2024 with UTC offset), streamed in batches.

    `start` is the earliest timestamp (the first row: the files are sorted); arrivals are
    seconds after it. Only TIMESTAMP is read: the token columns must be in the header and
    every row must have its fields, but their contents do not shape the traffic. Memory
    holds a few batches plus the arrival times.
    """
    path = Path(path)
    with _reading(path), _open(path) as stream:
        header = _header(path, stream.readline(1 << 20))
        _require_columns(path, header, COLUMNS_LLM)
        first = stream.readline(1 << 20).decode("utf-8", errors="replace").split(",")[header.index("TIMESTAMP")].strip()
    if not first:
        raise TraceError("no requests after the header", file=path, row=2)
    aware = bool(re.search(r"(Z|[+-]\d\d:?\d\d)$", first))
    stamp_type = pa.timestamp("ns", tz="UTC") if aware else pa.timestamp("ns")
    try:
        origin_ns, parts, ordered = _llm_arrivals(path, stamp_type, careful=False)
    except _Malformed:  # the fast pass only knows that something is wrong; this one names the row
        origin_ns, parts, ordered = _llm_arrivals(path, stamp_type, careful=True)
    if origin_ns is None:
        raise TraceError("no requests after the header", file=path, row=2)
    arrivals = np.concatenate(parts)
    del parts
    if not ordered:
        arrivals.sort()
    if arrivals[0] < 0:  # an unsorted file whose first row was not its earliest
        origin_ns += int(round(arrivals[0] * 1e9))
        arrivals -= arrivals[0]
    if origin_ns % 1000:  # datetime holds microseconds: t = 0 moves back to a whole one
        arrivals += (origin_ns % 1000) / 1e9
        origin_ns -= origin_ns % 1000
    start = pd.Timestamp(origin_ns, tz="UTC" if aware else None).to_pydatetime()
    return _per_request_trace(path.name, "azure_llm", start, arrivals)


class _Malformed(Exception):
    """The fast pass over a file met bad input (the careful pass then finds and names the row)."""


def _llm_arrivals(path: Path, stamp_type: pa.DataType, *, careful: bool) -> tuple[int | None, list[np.ndarray], bool]:
    """(first timestamp in ns, per-batch arrival seconds after it, whether all are in order).

    The fast pass converts while parsing, on every core; the careful pass reads text on one
    thread and casts it batch by batch, so the first bad cell's row is known. Work is done
    per batch, so memory beyond the arrivals themselves stays at a few batches.
    """
    parts: list[np.ndarray] = []
    origin_ns: int | None = None
    previous_ns, ordered = None, True
    for start_row, batch in _stream_csv(path, "TIMESTAMP", pa.string() if careful else stamp_type, careful=careful):
        stamps = batch.column(0)
        if careful:
            stamps = _cast_column(stamps, stamp_type, path, start_row, "TIMESTAMP")
        if stamps.null_count:
            if not careful:
                raise _Malformed
            raise TraceError("missing TIMESTAMP", file=path, row=start_row + _first_true(np.asarray(stamps.is_null())))
        ns = stamps.cast(pa.int64()).to_numpy(zero_copy_only=False)
        if not len(ns):
            continue
        origin_ns = int(ns[0]) if origin_ns is None else origin_ns
        ordered = ordered and (previous_ns is None or ns[0] >= previous_ns) and bool(np.all(ns[1:] >= ns[:-1]))
        previous_ns = ns[-1]
        parts.append((ns - origin_ns) / 1e9)
    return origin_ns, parts, ordered


def read_request_log(path: PathLike, *, time_column: str | None = None) -> Trace:
    """One timestamp per request (CSV or Parquet): epoch s/ms, relative seconds or ISO 8601."""
    path = Path(path)
    frame, column = _time_frame(path, time_column)
    seconds, start = _seconds(frame, column, path)
    seconds = np.sort(seconds)
    if start is None:  # relative seconds keep their t = 0 unless some are negative
        seconds -= min(0.0, float(seconds[0]))
    return _per_request_trace(path.name, "request_log", start, seconds)


def read_rate_series(path: PathLike, *, time_column: str | None = None) -> Trace:
    """`time,rate` (requests/s) or `time,count` rows at a fixed spacing; count = rate x spacing,
    rounded to whole requests."""
    path = Path(path)
    frame, column = _time_frame(path, time_column)
    lower = {c.lower(): c for c in frame.columns}
    value = lower.get("count") or lower.get("rate")
    if value is None:
        raise TraceError("a rate series needs a 'rate' or 'count' column", file=path, row=1)
    times, start = _seconds(frame, column, path)
    values = _numbers(frame, value, path, minimum=0.0)
    if len(times) < 2:
        raise TraceError("a rate series needs at least two rows to know its interval", file=path, row=2)
    steps = np.diff(times)
    interval_s = float(steps[0])
    off = np.abs(steps - interval_s) > 1e-6 * max(interval_s, 1.0)
    if interval_s <= 0 or off.any():
        row = 3 + (_first_true(off) if off.any() else 0)
        raise TraceError(f"times must rise by one fixed interval (first step {interval_s:g} s)", file=path, row=row)
    counts = values if value == lower.get("count") else values * interval_s
    if np.any(counts > MAX_COUNT):
        raise TraceError(f"{value} is too large", file=path, row=2 + _first_true(counts > MAX_COUNT))
    rounded = np.round(counts)
    if value == lower.get("count") and np.any(np.abs(rounded - counts) > 1e-9):
        raise TraceError("count must be a whole number", file=path, row=2 + _first_true(np.abs(rounded - counts) > 1e-9))
    return Trace(path.name, "rate_series", start, interval_s, rounded.astype(np.int64))


def read_canonical(path: PathLike) -> Trace:
    """The Parquet written by `write_trace`."""
    path = Path(path)
    with _reading(path):
        table = pq.read_table(path)
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    if meta.get("themis.kind") != "trace":
        raise TraceError("not a themis trace (footer has no themis.kind = trace)", file=path)
    if int(meta.get("themis.schema_version", "0")) > SCHEMA_VERSION:
        raise TraceError(f"written by a newer themis (schema_version {meta['themis.schema_version']})", file=path)
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
        return Trace(name, fmt, start, interval_s, counts, arrivals)
    if "count" not in table.column_names:
        raise TraceError("a themis trace needs an 'arrival_s' or 'count' column", file=path)
    return Trace(name, fmt, start, interval_s, table.column("count").to_numpy().astype(np.int64))


# --------------------------------------------------------------------------- reading helpers


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn I/O, decompression and decoding failures into one `TraceError` naming the file."""
    try:
        yield
    except TraceError:
        raise
    except FileNotFoundError:
        raise TraceError("no such file", file=path) from None
    except IsADirectoryError:
        raise TraceError("is a directory, not a trace file", file=path) from None
    except (EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile, gzip.BadGzipFile) as exc:
        raise TraceError(f"truncated or corrupt compressed file ({exc})", file=path) from None
    except UnicodeDecodeError:
        raise TraceError("not UTF-8 text (binary data?)", file=path) from None
    except pd.errors.EmptyDataError:
        raise TraceError("empty file", file=path, row=1) from None
    except pd.errors.ParserError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise TraceError(f"malformed CSV: {str(exc).strip()}", file=path, row=int(match[1]) if match else None) from None
    except pa.ArrowException as exc:
        raise TraceError(f"unreadable: {str(exc).splitlines()[0]}", file=path) from None
    except OSError as exc:
        raise TraceError(f"cannot read ({exc.strerror or exc})", file=path) from None


def _open(path: Path) -> BinaryIO:
    """The decompressed bytes of `path` (by suffix: .gz, .xz, .bz2, .zip with one member)."""
    suffix = path.suffix.lower()
    if suffix == ".gz":
        return gzip.open(path, "rb")
    if suffix == ".xz":
        return lzma.open(path, "rb")
    if suffix == ".bz2":
        return bz2.open(path, "rb")
    if suffix == ".zip":
        archive = zipfile.ZipFile(path)
        members = [m for m in archive.namelist() if not m.endswith("/")]
        if len(members) != 1:
            raise TraceError(f"a zipped trace must hold exactly one file, found {len(members)}", file=path)
        return archive.open(members[0])
    return open(path, "rb")


def _header(path: Path, line: bytes) -> list[str]:
    """The column names of a CSV header line; rejects empty files and binary junk."""
    if not line.strip():
        raise TraceError("empty file", file=path, row=1)
    if b"\x00" in line:
        raise TraceError("not a CSV text file (binary data)", file=path, row=1)
    text = re.split(r"\r\n|\r|\n", line.decode("utf-8-sig"))[0].strip()
    try:
        return [c.strip().strip('"') for c in next(csv.reader([text]))]
    except (csv.Error, StopIteration) as exc:
        raise TraceError(f"unreadable header ({exc})", file=path, row=1) from None


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


def _require_columns(path: Path, header: Sequence[str], required: Sequence[str]) -> None:
    missing = [c for c in required if c not in header]
    if missing:
        raise TraceError(f"missing column(s) {', '.join(missing)}", file=path, row=1)


def _read_frame(path: Path, required: Sequence[str], **options: Any) -> pd.DataFrame:
    """A whole CSV as a DataFrame (blank lines kept as rows so row numbers stay true)."""
    with _reading(path), _open(path) as stream:
        header = _header(path, stream.readline(1 << 20))
        _require_columns(path, header, required)
    with _reading(path), _open(path) as stream, warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            frame = pd.read_csv(stream, skip_blank_lines=False, low_memory=False, index_col=False, **options)
        except pd.errors.ParserWarning:  # pandas' notice that the first row is longer than the header
            raise TraceError(f"more fields than the {len(header)} header columns", file=path, row=2) from None
    if frame.empty:
        raise TraceError("no rows after the header", file=path, row=2)
    return frame


def _numbers(frame: pd.DataFrame, column: str, path: Path, *, minimum: float | None = None) -> np.ndarray:
    """`frame[column]` as floats, or a `TraceError` at the first missing/non-numeric/too-small cell."""
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        i = _first_true(bad)
        raise TraceError(f"{column} is not a number: {frame[column].iloc[i]!r}", file=path, row=i + 2)
    if minimum is not None and np.any(values < minimum):
        i = _first_true(values < minimum)
        raise TraceError(f"{column} must be >= {minimum:g}, got {values[i]:g}", file=path, row=i + 2)
    return values


def _require_filled(frame: pd.DataFrame, path: Path, columns: Sequence[str]) -> None:
    for column in columns:
        missing = frame[column].isna().to_numpy()
        if missing.any():
            raise TraceError(f"missing {column}", file=path, row=_first_true(missing) + 2)


def _first_true(mask: np.ndarray) -> int:
    return int(np.argmax(mask))


def _read_functions_day(path: Path) -> pd.DataFrame:
    """One 2019 day file -> counts indexed by (HashOwner, HashApp, HashFunction), one column per minute."""
    frame = _read_frame(path, ID_COLUMNS_2019, dtype={c: str for c in ID_COLUMNS_2019 + ("Trigger",)})
    minutes = [c for c in frame.columns if _MINUTE.match(str(c))]
    numbers = [int(_MINUTE.match(str(c))[1]) for c in minutes]
    if not minutes or numbers != list(range(1, len(minutes) + 1)):
        raise TraceError("per-minute columns must be 1..N (or minute_1..minute_N) in order", file=path, row=1)
    _require_filled(frame, path, ID_COLUMNS_2019)
    cells = frame[minutes]
    for column in cells.columns:
        if not pd.api.types.is_numeric_dtype(cells[column]):
            _numbers(cells, column, path)  # raises at the first non-number
    values = cells.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (values < 0) | (values != np.floor(values)) | (values > MAX_COUNT)
    if bad.any():
        row, col = divmod(int(np.argmax(bad)), values.shape[1])
        raise TraceError(f"minute {col + 1}: count must be a whole number >= 0, got {cells.iat[row, col]!r}", file=path, row=row + 2)
    counts = pd.DataFrame(values.astype(np.int64), index=pd.MultiIndex.from_frame(frame[list(ID_COLUMNS_2019)]))
    return counts.groupby(level=[0, 1, 2], sort=False).sum()


def _select_functions(
    table: pd.DataFrame, path: Path, *, function: str | None, app: str | None, top: int | None
) -> pd.DataFrame:
    """Rows of one function, one app and/or the `top` busiest (by total requests)."""
    if function is not None:
        table = table[table.index.get_level_values("HashFunction") == function]
        if table.empty:
            raise TraceError(f"no function {function!r} in the trace", option="--function", file=path)
    if app is not None:
        table = table[table.index.get_level_values("HashApp") == app]
        if table.empty:
            raise TraceError(f"no app {app!r} in the trace", option="--app", file=path)
    if top is not None:
        totals = table.sum(axis=1).to_numpy()
        order = np.argsort(-totals, kind="stable")[:top]
        table = table.iloc[np.sort(order)]
    return table


def _name(paths: Sequence[Path], function: str | None, app: str | None, top: int | None) -> str:
    name = paths[0].name if len(paths) == 1 else f"{paths[0].name} (+{len(paths) - 1} days)"
    if function is not None:
        name += f" function {function[:12]}"
    if app is not None:
        name += f" app {app[:12]}"
    if top is not None:
        name += f" top {top}"
    return name


def _per_request_trace(name: str, fmt: str, start: datetime | None, arrivals_s: np.ndarray) -> Trace:
    """A trace from sorted arrivals (seconds >= 0), with 1 s counts up to the last arrival."""
    if arrivals_s.size == 0:
        raise TraceError("no requests in the trace", file=name)
    if arrivals_s[-1] > MAX_PER_REQUEST_SPAN_S:
        days = arrivals_s[-1] / 86_400
        raise TraceError(f"spans {days:.0f} days; per-request traces may span at most {MAX_PER_REQUEST_SPAN_S / 86_400:.0f}", file=name)
    intervals = int(arrivals_s[-1] / PER_REQUEST_INTERVAL_S) + 1
    counts = np.zeros(intervals, dtype=np.int64)
    for first in range(0, arrivals_s.size, BINCOUNT_SLICE):  # slices keep the temporary small
        bins = (arrivals_s[first : first + BINCOUNT_SLICE] / PER_REQUEST_INTERVAL_S).astype(np.int64)  # floor, times >= 0
        counts += np.bincount(bins, minlength=intervals)
    return Trace(name, fmt, start, PER_REQUEST_INTERVAL_S, counts, arrivals_s)


def _stream_csv(path: Path, column: str, column_type: pa.DataType, *, careful: bool) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Batches holding `column` as `column_type`, each with the file row of its first record
    (header = row 1). Every row must have as many fields as the header.

    Not `careful`: any bad row or cell raises `_Malformed`. `careful`: one thread, so a row
    with the wrong number of fields is reported with its row number.
    """
    bad_rows: list[tuple[int | None, str]] = []

    def on_bad_row(row: Any) -> str:
        bad_rows.append((row.number, row.text))
        return "skip"

    def check_rows() -> None:
        if bad_rows and not careful:
            raise _Malformed
        if bad_rows:
            number, text = bad_rows[0]
            raise TraceError(f"wrong number of comma-separated fields in {text[:60]!r}", file=path, row=number)

    with _reading(path), _open(path) as stream:
        try:
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(use_threads=not careful, block_size=STREAM_BLOCK_BYTES),
                parse_options=pacsv.ParseOptions(invalid_row_handler=on_bad_row, ignore_empty_lines=False),
                convert_options=pacsv.ConvertOptions(include_columns=[column], column_types={column: column_type}, strings_can_be_null=True),
            )
            row = 2
            for batch in reader:
                check_rows()
                yield row, batch
                row += batch.num_rows
        except pa.ArrowInvalid:
            if careful:
                raise
            raise _Malformed from None
        check_rows()


def _cast_column(values: pa.Array, to: pa.DataType, path: Path, start_row: int, name: str) -> pa.Array:
    """Cast a string column, or find the first row that fails (by bisection) and name it."""
    try:
        return pc.cast(values, to)
    except pa.ArrowInvalid:
        lo, hi = 0, len(values)
        while hi - lo > 1:  # invariant: values[lo:hi] holds a bad cell
            mid = (lo + hi) // 2
            try:
                pc.cast(values.slice(lo, mid - lo), to)
                lo = mid
            except pa.ArrowInvalid:
                hi = mid
        raise TraceError(f"{name}: cannot read {values[lo].as_py()!r} as {to}", file=path, row=start_row + lo) from None


def _time_frame(path: Path, time_column: str | None) -> tuple[pd.DataFrame, str]:
    """The table of a generic request log / rate series and the name of its time column."""
    with _reading(path), _open(path) as stream:
        parquet = stream.read(4) == b"PAR1"
    if parquet:
        with _reading(path):
            frame = pq.read_table(path).to_pandas()
    else:
        frame = _read_frame(path, [time_column] if time_column else [])
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


def _seconds(frame: pd.DataFrame, column: str, path: Path) -> tuple[np.ndarray, datetime | None]:
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
                raise TraceError(f"{column} is not finite", file=path, row=_first_true(~np.isfinite(seconds)) + 2)
            largest = np.abs(seconds)
            if largest.max() > 1e14:
                i = _first_true(largest > 1e14)
                raise TraceError(f"{column}: {values.iloc[i]!r} is neither epoch seconds nor milliseconds", file=path, row=i + 2)
            if largest.max() > 1e11:
                seconds = seconds / 1000.0
            elif seconds.min() <= 1e8:
                return seconds, None
            origin = float(seconds.min())
            return seconds - origin, datetime.fromtimestamp(origin, tz=timezone.utc)
        if numbers.notna().any():
            i = _first_true(numbers.isna().to_numpy())
            raise TraceError(f"{column} is not a number: {values.iloc[i]!r}", file=path, row=i + 2)
        stamps = pd.to_datetime(values.astype(str), format="ISO8601", errors="coerce", utc=None) if _same_zone(values) else None
        if stamps is None:
            raise TraceError(f"{column}: mixed time zones or unreadable times", file=path, row=2)
        if stamps.isna().any():
            i = _first_true(stamps.isna().to_numpy())
            raise TraceError(f"{column} is not a time: {values.iloc[i]!r}", file=path, row=i + 2)
    naive = stamps if stamps.dt.tz is None else stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    ns = naive.to_numpy().astype("datetime64[ns]").astype(np.int64)
    origin = int(ns.min()) // 1000 * 1000  # datetime holds microseconds
    start = pd.Timestamp(origin, tz="UTC" if stamps.dt.tz is not None else None).to_pydatetime()
    return (ns - origin) / 1e9, start


def _same_zone(values: pd.Series) -> bool:
    """Whether every ISO time has an offset, or none has (pandas refuses a mixture)."""
    marked = values.astype(str).str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True)
    return bool(marked.all() or not marked.any())


def _parquet_kind(path: Path) -> str | None:
    with _reading(path):
        meta = pq.read_schema(path).metadata or {}
    kind = meta.get(b"themis.kind")
    return kind.decode() if kind else None


def _parquet_columns(path: Path) -> list[str]:
    with _reading(path):
        return list(pq.read_schema(path).names)


# --------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class TraceSummary:
    """What `themis trace inspect` reports about a trace.

    Rates are per `interval_s` bins (the trace's native interval unless asked otherwise).
    `span_s` is last arrival - first arrival for per-request traces, else the covered time.
    `cv` is the coefficient of variation of the rate series (std / mean); `peak_to_mean` is
    max / mean. `sparkline_rps` is the rate averaged into at most `SPARKLINE_WIDTH` buckets.
    """

    name: str
    source_format: str
    trace_start: str | None
    interval_s: float
    native_interval_s: float
    duration_s: float
    span_s: float
    requests: int
    per_request: bool
    mean_rps: float
    p50_rps: float
    p99_rps: float
    max_rps: float
    cv: float
    peak_to_mean: float
    sparkline_rps: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "kind": "trace_summary", **self.__dict__}

    def to_frame(self) -> pd.DataFrame:
        row = {k: v for k, v in self.__dict__.items() if k != "sparkline_rps"}
        return pd.DataFrame([row])


SPARKLINE_WIDTH = 48


def summarize(trace: Trace, interval_s: float | None = None) -> TraceSummary:
    """Size, span, rate percentiles and burstiness of `trace` (see `TraceSummary`)."""
    interval_s = float(interval_s or trace.interval_s)
    rates = trace.rate_series(interval_s)
    mean = float(rates.mean()) if rates.size else 0.0
    std = float(rates.std()) if rates.size else 0.0
    arrivals = trace.arrivals_s
    span = float(arrivals[-1] - arrivals[0]) if arrivals is not None and arrivals.size else trace.duration_s
    buckets = np.array_split(rates, min(SPARKLINE_WIDTH, max(rates.size, 1)))
    return TraceSummary(
        name=trace.name,
        source_format=trace.source_format,
        trace_start=trace.trace_start,
        interval_s=interval_s,
        native_interval_s=float(trace.interval_s),
        duration_s=trace.duration_s,
        span_s=span,
        requests=trace.requests,
        per_request=arrivals is not None,
        mean_rps=mean,
        p50_rps=float(np.percentile(rates, 50)) if rates.size else 0.0,
        p99_rps=float(np.percentile(rates, 99)) if rates.size else 0.0,
        max_rps=float(rates.max()) if rates.size else 0.0,
        cv=std / mean if mean > 0 else 0.0,
        peak_to_mean=float(rates.max()) / mean if mean > 0 else 0.0,
        sparkline_rps=[float(b.mean()) if b.size else 0.0 for b in buckets],
    )
