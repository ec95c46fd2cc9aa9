"""`themis trace inspect` / `themis trace convert` in-process: JSON contract, canonical round trip,
and malformed files -> exit 2 with one stderr line naming file and row."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from themis.cli.app import app
from themis.planner.traffic.loading import load_trace

SUMMARY_KEYS = {
    "schema_version", "kind", "name", "source_format", "trace_start", "interval_s", "native_interval_s",
    "duration_s", "span_s", "requests", "per_request", "mean_rps", "p50_rps", "p99_rps", "max_rps", "cv",
    "peak_to_mean", "sparkline_rps", "tokens",
}


def test_inspect_llm_json(cli_runner, llm_trace_path) -> None:
    result = cli_runner.invoke(app, ["trace", "inspect", str(llm_trace_path), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload) == SUMMARY_KEYS
    assert payload["source_format"] == "azure_llm" and payload["requests"] == 8819
    assert round(payload["span_s"] / 60, 1) == 57.3
    assert payload["max_rps"] == 67.0 and payload["trace_start"] == "2023-11-16T18:17:03.979960"
    assert payload["tokens"]["prompt"]["max"] == 7437 and payload["tokens"]["output"]["total"] == 245_896


def test_inspect_human_view_has_the_sparkline(cli_runner, functions_2019_path) -> None:
    result = cli_runner.invoke(app, ["trace", "inspect", str(functions_2019_path), "--top", "3"])
    assert result.exit_code == 0, result.output
    assert "azure_functions_2019" in result.stdout and "70,501" in result.stdout
    assert "CV" in result.stdout and "peak/mean" in result.stdout
    assert any(block in result.stdout for block in "▁▂▃▄▅▆▇█")
    assert "tokens" not in result.stdout  # a trace without tokens has no token rows


def test_inspect_llm_human_view_shows_tokens(cli_runner, llm_trace_path) -> None:
    result = cli_runner.invoke(app, ["trace", "inspect", str(llm_trace_path)])
    assert result.exit_code == 0, result.output
    assert "prompt tokens" in result.stdout and "max 7,437" in result.stdout and "tokens/s" in result.stdout


def test_inspect_with_interval(cli_runner, llm_trace_path) -> None:
    result = cli_runner.invoke(app, ["trace", "inspect", str(llm_trace_path), "--interval", "60", "--json"])
    payload = json.loads(result.stdout)
    assert payload["interval_s"] == 60.0
    assert payload["max_rps"] == pytest.approx(load_trace(llm_trace_path).rate_series(60).max())


def test_convert_round_trip(cli_runner, functions_2021_path, tmp_path) -> None:
    out = tmp_path / "canonical.parquet"
    result = cli_runner.invoke(app, ["trace", "convert", str(functions_2021_path), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["stored"] == "arrivals"
    np.testing.assert_array_equal(load_trace(out).arrivals_s, load_trace(functions_2021_path).arrivals_s)
    again = cli_runner.invoke(app, ["trace", "inspect", str(out), "--json"])
    first = cli_runner.invoke(app, ["trace", "inspect", str(functions_2021_path), "--json"])
    assert json.loads(again.stdout) == json.loads(first.stdout)


def test_convert_needs_parquet(cli_runner, llm_trace_path, tmp_path) -> None:
    result = cli_runner.invoke(app, ["trace", "convert", str(llm_trace_path), "--out", str(tmp_path / "x.csv")])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "--out" in result.stderr


def test_option_for_the_wrong_format(cli_runner, llm_trace_path) -> None:
    result = cli_runner.invoke(app, ["trace", "inspect", str(llm_trace_path), "--top", "3"])
    assert result.exit_code == 2 and "--top" in result.stderr


# --------------------------------------------------------------------------- malformed files


def _malformed(kind: str, n: int, seed: int) -> tuple[bytes, str, int | None]:
    """(file bytes, suffix, expected row) for one kind of malformed trace."""
    rng = np.random.default_rng(seed)
    header = "HashFunction,HashOwner,HashApp,minute_1,minute_2\n"
    rows = [f"f{i},o,a,{rng.integers(0, 9)},{rng.integers(0, 9)}" for i in range(n)]
    bad = int(rng.integers(0, n))
    if kind == "missing column":  # the 2021 layout without duration, or the 2019 one without its minutes
        text = "app,func,end_timestamp\na,f,1.5\n" if seed % 2 else "HashFunction,HashOwner,HashApp\nf,o,a\n"
        return text.encode(), ".csv", 1
    if kind == "non-number":
        rows[bad] = f"f{bad},o,a,3,three"
        return (header + "\n".join(rows)).encode(), ".csv", bad + 2
    if kind == "negative count":
        rows[bad] = f"f{bad},o,a,-{bad + 1},1"
        return (header + "\n".join(rows)).encode(), ".csv", bad + 2
    if kind == "empty":
        return b"", ".csv", 1
    if kind == "wrong delimiter":
        return (header.replace(",", ";") + "\n".join(r.replace(",", ";") for r in rows)).encode(), ".csv", 1
    if kind == "binary junk":
        return b"\x00\x01" + rng.bytes(64), ".csv", None
    packed = gzip.compress((header + "\n".join(rows * 50)).encode())
    return packed[: len(packed) // 2], ".csv.gz", None  # truncated compression


KINDS = ["missing column", "non-number", "negative count", "empty", "wrong delimiter", "binary junk", "truncated compression"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(KINDS), n=st.integers(1, 30), seed=st.integers(0, 1000), as_json=st.booleans())
def test_malformed_file_exits_2_with_one_line(cli_runner, tmp_path, kind, n, seed, as_json) -> None:
    data, suffix, row = _malformed(kind, n, seed)
    path = tmp_path / f"bad-{kind.replace(' ', '-')}{suffix}"
    path.write_bytes(data)
    args = ["trace", "inspect", str(path)] + (["--json"] if as_json else [])
    result = cli_runner.invoke(app, args)
    assert result.exit_code == 2, (kind, result.output)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("themis: error: ") and "Traceback" not in result.output
    assert path.name in lines[0]
    if row is not None:
        assert f"row {row}" in lines[0]
    if as_json:
        assert json.loads(result.stdout)["error"]["kind"] == "bad_input"
    else:
        assert result.stdout == ""
