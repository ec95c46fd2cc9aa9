"""Property tests: malformed files always give one `TraceError` naming file and row; Poisson
arrivals are reproducible with exact per-interval totals."""

from __future__ import annotations

import bz2
import gzip
import lzma
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from themis.planner.errors import TraceError
from themis.planner.traffic.loading import load_trace
from themis.planner.traffic.trace import Trace

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

ID = st.text(alphabet="0123456789abcdef", min_size=4, max_size=8)
COUNTS = st.lists(st.integers(0, 50), min_size=3, max_size=3)
NON_NUMBER = st.sampled_from(["x", "1.5e", "--3", "abc", "1,5", "NaN?", "one"])


def _functions_file(rows: list[list[object]]) -> str:
    lines = ["HashFunction,HashOwner,HashApp,minute_1,minute_2,minute_3"]
    lines += [",".join(str(cell) for cell in row) for row in rows]
    return "\n".join(lines) + "\n"


def _load_error(path: Path) -> TraceError:
    with pytest.raises(TraceError) as caught:
        load_trace(path)
    error = caught.value
    assert path.name in str(error)
    return error


@SETTINGS
@given(rows=st.lists(st.tuples(ID, COUNTS), min_size=1, max_size=6), bad_row=st.integers(0, 5), col=st.integers(0, 2), junk=NON_NUMBER)
def test_non_number_count_names_its_row(tmp_path, rows, bad_row, col, junk) -> None:
    table = [[i, i, i, *counts] for i, counts in rows]
    bad_row %= len(table)
    table[bad_row][3 + col] = junk
    path = tmp_path / "nonnumber.csv"
    path.write_text(_functions_file(table))
    error = _load_error(path)
    assert error.row == bad_row + 2  # header is row 1
    assert f"row {bad_row + 2}" in str(error)


@SETTINGS
@given(rows=st.lists(st.tuples(ID, COUNTS), min_size=1, max_size=6), bad_row=st.integers(0, 5), value=st.integers(-1000, -1))
def test_negative_count_names_its_row(tmp_path, rows, bad_row, value) -> None:
    table = [[i, i, i, *counts] for i, counts in rows]
    bad_row %= len(table)
    table[bad_row][4] = value
    path = tmp_path / "negative.csv"
    path.write_text(_functions_file(table))
    assert _load_error(path).row == bad_row + 2


@SETTINGS
@given(drop=st.sampled_from(["TIMESTAMP", "ContextTokens", "app", "duration", "HashApp"]))
def test_missing_column(tmp_path, drop) -> None:
    layouts = {
        "llm": ("TIMESTAMP,ContextTokens,GeneratedTokens", "2023-11-16 18:17:03.9799600,10,2", "azure_llm"),
        "f21": ("app,func,end_timestamp,duration", "a,f,1.5,0.5", "azure_functions_2021"),
        "f19": ("HashOwner,HashApp,HashFunction,Trigger,1,2", "o,a,f,http,1,2", "azure_functions_2019"),
    }
    header, row, fmt = next(v for v in layouts.values() if drop in v[0].split(","))
    columns = header.split(",")
    keep = [i for i, c in enumerate(columns) if c != drop]
    path = tmp_path / "missing.csv"
    path.write_text(",".join(columns[i] for i in keep) + "\n" + ",".join(row.split(",")[i] for i in keep) + "\n")
    with pytest.raises(TraceError) as caught:
        load_trace(path, format=fmt)
    assert caught.value.row == 1 and drop in str(caught.value)


@SETTINGS
@given(n=st.integers(1, 20), bad=st.integers(0, 19), junk=st.sampled_from(["yesterday", "2023-13-45 00:00:00", "12:00", ""]))
def test_llm_bad_timestamp_names_its_row(tmp_path, n, bad, junk) -> None:
    bad %= n
    stamps = [f"2023-11-16 18:17:{s:02d}.1000000" for s in range(n)]
    stamps[bad] = junk
    path = tmp_path / "llm.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n" + "\n".join(f"{s},5,1" for s in stamps))
    assert _load_error(path).row == bad + 2


@SETTINGS
@given(delimiter=st.sampled_from([";", "\t", "|"]), n=st.integers(1, 5))
def test_wrong_delimiter(tmp_path, delimiter, n) -> None:
    path = tmp_path / "semicolons.csv"
    header = delimiter.join(["TIMESTAMP", "ContextTokens", "GeneratedTokens"])
    path.write_text(header + "\n" + "\n".join(delimiter.join(["2023-11-16 18:17:03.1", "1", "2"]) for _ in range(n)))
    error = _load_error(path)
    assert error.row == 1 and "delimiter" in str(error)


@SETTINGS
@given(junk=st.binary(min_size=1, max_size=300))
def test_binary_junk_never_escapes_as_another_exception(tmp_path, junk) -> None:
    path = tmp_path / "junk.csv"
    path.write_bytes(b"\x00\xff" + junk)
    _load_error(path)


@SETTINGS
@given(text=st.text(max_size=200))
def test_arbitrary_text_loads_or_raises_trace_error(tmp_path, text) -> None:
    path = tmp_path / "text.csv"
    path.write_text(text, encoding="utf-8")
    try:
        trace = load_trace(path)
    except TraceError as error:
        assert "text.csv" in str(error)
    else:  # whatever loads is a consistent trace: whole counts, and arrivals that match them
        assert trace.counts.dtype.kind == "i" and (trace.counts >= 0).all()
        if trace.arrivals_s is not None:
            assert trace.arrivals_s.size == trace.requests


def test_empty_file(tmp_path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    assert _load_error(path).row == 1


def test_header_without_rows(tmp_path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n")
    assert _load_error(path).row == 2


@SETTINGS
@given(suffix=st.sampled_from([".gz", ".xz", ".bz2", ".zip"]), keep=st.floats(0.05, 0.9))
def test_truncated_compression(tmp_path, llm_trace_path, suffix, keep) -> None:
    data = llm_trace_path.read_bytes()
    if suffix == ".zip":
        whole = tmp_path / "whole.zip"
        with zipfile.ZipFile(whole, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("trace.csv", data)
        packed = whole.read_bytes()
    else:
        packed = {".gz": gzip.compress, ".xz": lzma.compress, ".bz2": bz2.compress}[suffix](data)
    path = tmp_path / f"cut.csv{suffix}"
    path.write_bytes(packed[: int(len(packed) * keep)])
    error = _load_error(path)
    assert "truncated" in str(error) or "corrupt" in str(error) or "zip" in str(error)


# --------------------------------------------------------------------------- Poisson arrivals


@settings(max_examples=60, deadline=None)
@given(counts=st.lists(st.integers(0, 40), min_size=1, max_size=50), interval_s=st.sampled_from([1.0, 10.0, 60.0]), seed=st.integers(0, 2**32 - 1))
def test_poisson_arrivals_reproducible_with_exact_totals(counts, interval_s, seed) -> None:
    trace = Trace("synthetic", "rate_series", None, interval_s, np.array(counts, dtype=np.int64))
    arrivals = trace.request_arrivals(seed)
    np.testing.assert_array_equal(arrivals, trace.request_arrivals(seed))
    assert np.all(np.diff(arrivals) >= 0)
    per_interval = np.bincount((arrivals // interval_s).astype(np.int64), minlength=len(counts))
    np.testing.assert_array_equal(per_interval, counts)
    if sum(counts) > 3:
        assert not np.array_equal(arrivals, trace.request_arrivals(seed + 1))
