"""The profile table contract: schema, footer, atomic rewrite, raw samples, reading version 1,
validation of foreign files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from themis.common.errors import InputError
from themis.profiler.errors import ProfileFileError
from themis.profiler.measure import CellRecord
from themis.profiler.table import (
    COLUMNS,
    ENVIRONMENT_KEYS,
    MEASUREMENT_COLUMNS,
    PROFILE_SCHEMA_VERSION,
    RAW_COLUMNS,
    V1_COLUMNS,
    V1_DEFAULTS,
    profile_rows,
    read_profile,
    summary_frame,
    write_profile,
)

GOLDEN = Path(__file__).parents[1] / "data" / "profiles"


def test_a_version_1_file_reads_with_what_it_did_not_record_filled_in() -> None:
    golden = read_profile(GOLDEN / "small_cnn_cpu.parquet")  # the golden profiles are version 1
    assert golden.attrs["schema_version"] == 1 and golden.attrs["measurement"] == {}
    assert list(golden.columns) == list(COLUMNS) and set(pq.read_schema(GOLDEN / "small_cnn_cpu.parquet").names) == set(V1_COLUMNS)
    assert (golden.cpu_limit == "pin").all() and (golden.processes == 1).all() and (golden.sanity == "").all()
    assert all(len(s) == 0 for s in golden.samples_ms) and golden.runqueue_wait.isna().all()


def test_round_trip_writes_version_2_and_keeps_rows_columns_and_footer(tmp_path: Path) -> None:
    golden = read_profile(GOLDEN / "small_cnn_cpu.parquet")
    measurement = {"cpu_limit": "pin", "processes": 3}
    path = write_profile(tmp_path / "copy.parquet", profile_rows(golden), golden.attrs["environment"], measurement)
    again = read_profile(path)
    pd.testing.assert_frame_equal(again, golden)
    assert again.attrs["environment"] == golden.attrs["environment"] and again.attrs["measurement"] == measurement
    assert again.attrs["schema_version"] == PROFILE_SCHEMA_VERSION == 2
    meta = pq.read_schema(path).metadata
    assert meta[b"themis.kind"] == b"profile"
    assert set(json.loads(meta[b"themis.environment"])) == set(ENVIRONMENT_KEYS)
    assert list(pq.read_schema(path).names) == list(COLUMNS)
    assert pq.read_schema(path).field("samples_ms").type == pa.list_(pa.float64())
    assert [p.name for p in tmp_path.iterdir()] == ["copy.parquet"]  # no temporary file left behind


@given(st.lists(st.lists(st.floats(0.001, 1e4, allow_nan=False), min_size=1, max_size=40), min_size=1, max_size=4))
def test_raw_samples_survive_the_file_process_by_process(per_process: list[list[float]]) -> None:
    import tempfile

    record = CellRecord("m", "cpu", "c", "", 1, 2, "float32", "8", status="ok").with_samples(per_process)
    with tempfile.TemporaryDirectory() as directory:
        (row,) = profile_rows(read_profile(write_profile(Path(directory) / "p.parquet", [record.to_row()], {})))
    assert row["samples_ms"].tolist() == [x for s in per_process for x in s]
    split = np.split(row["samples_ms"], np.cumsum(row["process_samples"])[:-1])
    assert [s.tolist() for s in split] == per_process
    assert row["p99_ms"] == np.percentile(row["samples_ms"], 99) and row["processes"] == len(per_process)


def test_a_row_without_measurement_columns_gets_the_blank_values(tmp_path: Path) -> None:
    row = {name: value for name, value in CellRecord("m", "cpu", "c", "", 1, 8, "float32", "8", status="oom").to_row().items()
           if name in V1_COLUMNS}
    (stored,) = profile_rows(read_profile(write_profile(tmp_path / "p.parquet", [row], {})))
    assert stored["processes"] == 0 and stored["sanity"] == "" and len(stored["samples_ms"]) == 0
    assert math.isnan(stored["window_spread"]) and set(MEASUREMENT_COLUMNS) <= set(stored) and set(V1_DEFAULTS) == set(MEASUREMENT_COLUMNS)


def test_json_and_csv_leave_the_raw_samples_in_the_parquet() -> None:
    golden = read_profile(GOLDEN / "mlp_cpu.parquet")
    assert set(RAW_COLUMNS) <= set(golden.columns) and not set(RAW_COLUMNS) & set(summary_frame(golden).columns)


def test_an_empty_profile_is_valid(tmp_path: Path) -> None:
    frame = read_profile(write_profile(tmp_path / "empty.parquet", [], {"host": "h"}))
    assert frame.empty and list(frame.columns) == list(COLUMNS)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "foreign", "missing_column", "missing_raw_column", "newer", "bad_status"])
def test_a_damaged_or_foreign_file_is_an_input_error(tmp_path: Path, damage: str) -> None:
    golden_path = GOLDEN / "mlp_cpu.parquet"
    golden = read_profile(golden_path)
    path = tmp_path / "bad.parquet"
    if damage == "garbage":
        path.write_bytes(b"this is not parquet at all")
    elif damage == "truncated":
        path.write_bytes(golden_path.read_bytes()[:-100])
    elif damage == "foreign":
        golden.to_parquet(path)  # same columns, no themis footer
    elif damage == "missing_column":
        write_profile(path, profile_rows(golden), {})
        table = pq.read_table(path)
        pq.write_table(table.drop_columns(["p99_ms"]).replace_schema_metadata(table.schema.metadata), path)
    elif damage == "missing_raw_column":  # a version-2 file must have its version's columns
        write_profile(path, profile_rows(golden), {})
        table = pq.read_table(path)
        pq.write_table(table.drop_columns(["samples_ms"]).replace_schema_metadata(table.schema.metadata), path)
    elif damage == "newer":
        write_profile(path, profile_rows(golden), {})
        table = pq.read_table(path)
        meta = {**table.schema.metadata, b"themis.schema_version": str(PROFILE_SCHEMA_VERSION + 1).encode()}
        pq.write_table(table.replace_schema_metadata(meta), path)
    elif damage == "bad_status":
        rows = profile_rows(golden)
        rows[0]["status"] = "great"
        write_profile(path, rows, {})
    with pytest.raises(ProfileFileError) as error:
        read_profile(path)
    assert isinstance(error.value, InputError)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(ProfileFileError, match="no such profile file"):
        read_profile(tmp_path / "nope.parquet")


def test_the_table_module_does_not_import_torch() -> None:
    code = "import sys, themis.profiler.table as t; t.read_profile(sys.argv[1]); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code, str(GOLDEN / "small_cnn_cpu.parquet")], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
