"""Reading trace files: decompression, headers, CSV frames and the errors that name a row.

Every loader goes through these helpers, so a missing file, truncated compression, binary
junk or a malformed cell becomes one `TraceError` naming the file and the row (the line
number, header = row 1) whatever the format.
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
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa

from themis.common.errors import shown
from themis.planner.errors import TraceError
from themis.planner.traffic.trace import Trace

PathLike = str | Path

PER_REQUEST_INTERVAL_S = 1.0
"""Bin width of `counts` for formats that record single requests (arrivals stay exact)."""

BINCOUNT_SLICE = 1 << 22
"""Arrivals binned per slice when counting, so the temporary stays at 32 MB on huge traces."""

MAX_PER_REQUEST_SPAN_S = 100 * 86_400.0
"""Longest per-request trace accepted (its 1 s counts then take about 70 MB)."""

MAX_COUNT = 1e15
"""Largest request count per interval accepted (exact in float64 and int64)."""


@contextlib.contextmanager
def reading_errors(path: Path) -> Iterator[None]:
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


def open_decompressed(path: Path) -> BinaryIO:
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


def parse_header(path: Path, line: bytes) -> list[str]:
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


def require_columns(path: Path, header: Sequence[str], required: Sequence[str]) -> None:
    missing = [c for c in required if c not in header]
    if missing:
        raise TraceError(f"missing column(s) {', '.join(missing)}", file=path, row=1)


def read_frame(path: Path, required: Sequence[str], **options: Any) -> pd.DataFrame:
    """A whole CSV as a DataFrame (blank lines kept as rows so row numbers stay true)."""
    with reading_errors(path), open_decompressed(path) as stream:
        header = parse_header(path, stream.readline(1 << 20))
        require_columns(path, header, required)
    with reading_errors(path), open_decompressed(path) as stream, warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            frame = pd.read_csv(stream, skip_blank_lines=False, low_memory=False, index_col=False, **options)
        except pd.errors.ParserWarning:  # pandas' notice that the first row is longer than the header
            raise TraceError(f"more fields than the {len(header)} header columns", file=path, row=2) from None
    if frame.empty:
        raise TraceError("no rows after the header", file=path, row=2)
    return frame


def column_numbers(frame: pd.DataFrame, column: str, path: Path, *, minimum: float | None = None) -> np.ndarray:
    """`frame[column]` as floats, or a `TraceError` at the first missing/non-numeric/too-small cell."""
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        i = first_true(bad)
        raise TraceError(f"{column} is not a number: {shown(frame[column].iloc[i])}", file=path, row=i + 2)
    if minimum is not None and np.any(values < minimum):
        i = first_true(values < minimum)
        raise TraceError(f"{column} must be >= {minimum:g}, got {values[i]:g}", file=path, row=i + 2)
    return values


def require_filled(frame: pd.DataFrame, path: Path, columns: Sequence[str]) -> None:
    for column in columns:
        missing = frame[column].isna().to_numpy()
        if missing.any():
            raise TraceError(f"missing {column}", file=path, row=first_true(missing) + 2)


def first_true(mask: np.ndarray) -> int:
    return int(np.argmax(mask))


def per_request_trace(
    name: str,
    fmt: str,
    start: datetime | None,
    arrivals_s: np.ndarray,
    prompt_tokens: np.ndarray | None = None,
    output_tokens: np.ndarray | None = None,
) -> Trace:
    """A trace from sorted arrivals (seconds >= 0), with 1 s counts up to the last arrival
    (and each request's tokens, in the same order, when the format records them)."""
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
    return Trace(name, fmt, start, PER_REQUEST_INTERVAL_S, counts, arrivals_s, prompt_tokens, output_tokens)
