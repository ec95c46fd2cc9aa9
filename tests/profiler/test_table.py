"""The profile table contract: schema, footer, atomic rewrite, validation of foreign files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from themis.common import SCHEMA_VERSION
from themis.common.errors import InputError
from themis.profiler.errors import ProfileFileError
from themis.profiler.table import (
    COLUMNS,
    ENVIRONMENT_KEYS,
    profile_rows,
    read_profile,
    write_profile,
)

GOLDEN = Path(__file__).parents[1] / "data" / "profiles"


def test_round_trip_keeps_rows_columns_and_footer(tmp_path: Path) -> None:
    golden = read_profile(GOLDEN / "small_cnn_cpu.parquet")
    path = write_profile(tmp_path / "copy.parquet", profile_rows(golden), golden.attrs["environment"])
    again = read_profile(path)
    pd.testing.assert_frame_equal(again, golden)
    assert again.attrs["environment"] == golden.attrs["environment"]
    assert again.attrs["schema_version"] == SCHEMA_VERSION
    meta = pq.read_schema(path).metadata
    assert meta[b"themis.kind"] == b"profile"
    assert set(json.loads(meta[b"themis.environment"])) == set(ENVIRONMENT_KEYS)
    assert list(pq.read_schema(path).names) == list(COLUMNS)
    assert [p.name for p in tmp_path.iterdir()] == ["copy.parquet"]  # no temporary file left behind


def test_an_empty_profile_is_valid(tmp_path: Path) -> None:
    frame = read_profile(write_profile(tmp_path / "empty.parquet", [], {"host": "h"}))
    assert frame.empty and list(frame.columns) == list(COLUMNS)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "foreign", "missing_column", "newer", "bad_status"])
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
    elif damage == "newer":
        write_profile(path, profile_rows(golden), {})
        table = pq.read_table(path)
        meta = {**table.schema.metadata, b"themis.schema_version": str(SCHEMA_VERSION + 1).encode()}
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
