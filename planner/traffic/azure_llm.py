"""Azure LLM inference traces 2023/2024 (`TIMESTAMP,ContextTokens,GeneratedTokens`): each
request's arrival and its prompt (context) and generated tokens.

Streamed in batches with pyarrow, so a 17-million-row file stays memory bounded: a fast
pass converts while parsing on every core, and only when it meets bad input does a careful
single-threaded pass find and name the row.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from themis.planner.errors import TraceError
from themis.planner.traffic.reading import (
    PathLike,
    first_true,
    open_decompressed,
    parse_header,
    per_request_trace,
    reading_errors,
    require_columns,
)
from themis.planner.traffic.trace import Trace

COLUMNS_LLM = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
TOKEN_TYPE = pa.int32()
"""Tokens per request fit in 32 bits (the longest context of any model is far below 2^31)."""

STREAM_BLOCK_BYTES = 4 << 20
"""Bytes per streaming CSV batch for the LLM layout: bounds memory on 17-million-row files
(arrow's read-ahead holds a few blocks: 16 MB blocks cost about 0.5 GB, 4 MB about 0.15 GB)."""


def read_azure_llm(path: PathLike) -> Trace:
    """The Azure LLM inference layout (2023 naive, 2024 with UTC offset), streamed in batches.

    `start` is the earliest timestamp (the first row: the files are sorted); arrivals are
    seconds after it. `ContextTokens` and `GeneratedTokens` become each request's prompt
    and output tokens (whole numbers >= 0; int32). Memory holds a few batches plus the
    arrival times and tokens (16 bytes a request).
    """
    path = Path(path)
    with reading_errors(path), open_decompressed(path) as stream:
        header = parse_header(path, stream.readline(1 << 20))
        require_columns(path, header, COLUMNS_LLM)
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
    arrivals, prompt, output = (_joined(column) for column in parts)  # one at a time: each column's parts go as it is joined
    del parts
    if not ordered:
        order = np.argsort(arrivals, kind="stable")
        arrivals, prompt, output = arrivals[order], prompt[order], output[order]
    if arrivals[0] < 0:  # an unsorted file whose first row was not its earliest
        origin_ns += int(round(arrivals[0] * 1e9))
        arrivals -= arrivals[0]
    if origin_ns % 1000:  # datetime holds microseconds: t = 0 moves back to a whole one
        arrivals += (origin_ns % 1000) / 1e9
        origin_ns -= origin_ns % 1000
    start = pd.Timestamp(origin_ns, tz="UTC" if aware else None).to_pydatetime()
    return per_request_trace(path.name, "azure_llm", start, arrivals, prompt, output)


class _Malformed(Exception):
    """The fast pass over a file met bad input (the careful pass then finds and names the row)."""


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """The parts as one array; the list is emptied so they can be freed at once."""
    joined = np.concatenate(parts)
    parts.clear()
    return joined


def _llm_arrivals(
    path: Path, stamp_type: pa.DataType, *, careful: bool
) -> tuple[int | None, tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]], bool]:
    """(first timestamp in ns, the per-batch parts of (arrival seconds after it, prompt
    tokens, output tokens), whether all arrivals are in order).

    The fast pass converts while parsing, on every core; the careful pass reads text on one
    thread and casts it batch by batch, so the first bad cell's row is known. Work is done
    per batch, so memory beyond the arrivals and tokens themselves stays at a few batches.
    """
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    origin_ns: int | None = None
    previous_ns, ordered = None, True
    types = dict(zip(COLUMNS_LLM, (stamp_type, TOKEN_TYPE, TOKEN_TYPE)))
    read_as = {name: pa.string() for name in types} if careful else types
    for start_row, batch in _stream_csv(path, read_as, careful=careful):
        columns = []
        for name, values in zip(COLUMNS_LLM, batch.columns):
            if careful:
                values = _cast_column(values, types[name], path, start_row, name)
            if values.null_count:
                if not careful:
                    raise _Malformed
                raise TraceError(f"missing {name}", file=path, row=start_row + first_true(np.asarray(values.is_null())))
            columns.append(values)
        stamps, *tokens = columns
        tokens = [t.to_numpy(zero_copy_only=False) for t in tokens]
        for name, values in zip(COLUMNS_LLM[1:], tokens):
            if values.size and values.min() < 0:
                if not careful:
                    raise _Malformed
                i = first_true(values < 0)
                raise TraceError(f"{name} must be a whole number >= 0, got {values[i]}", file=path, row=start_row + i)
        ns = stamps.cast(pa.int64()).to_numpy(zero_copy_only=False)
        if not len(ns):
            continue
        origin_ns = int(ns[0]) if origin_ns is None else origin_ns
        ordered = ordered and (previous_ns is None or ns[0] >= previous_ns) and bool(np.all(ns[1:] >= ns[:-1]))
        previous_ns = ns[-1]
        for column, values in zip(parts, ((ns - origin_ns) / 1e9, *tokens)):
            column.append(values)
    return origin_ns, parts, ordered


def _stream_csv(path: Path, columns: dict[str, pa.DataType], *, careful: bool) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Batches holding `columns` (name -> type, in that order), each with the file row of its
    first record (header = row 1). Every row must have as many fields as the header.

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

    with reading_errors(path), open_decompressed(path) as stream:
        try:
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(use_threads=not careful, block_size=STREAM_BLOCK_BYTES),
                parse_options=pacsv.ParseOptions(invalid_row_handler=on_bad_row, ignore_empty_lines=False),
                convert_options=pacsv.ConvertOptions(include_columns=list(columns), column_types=columns, strings_can_be_null=True),
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
