"""`themis replay --url`: the JSON and Parquet contracts, bad input, and what survives a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from themis.cli.app import app
from themis.common import SCHEMA_VERSION

SUMMARY_KEYS = {
    "schema_version", "kind", "trace_start", "settings", "interrupted", "scheduled", "requests", "ok", "failed", "violations",
    "violation_rate", "p50_ms", "p95_ms", "p99_ms", "max_ms", "sender_lag_p50_ms", "sender_lag_p99_ms", "sender_lag_max_ms",
    "offered_rps", "statuses",
}


def test_replay_against_a_url_prints_the_json_contract_and_writes_one_row_per_request(cli_runner, plain_server, llm_window, tmp_path) -> None:
    server = plain_server(delay_ms=1)
    trace, arrivals = llm_window(2.0)
    out = tmp_path / "requests.parquet"
    args = ["replay", "--trace", str(trace), "--url", server.url, "--protocol", "v2", "--server-model", "small_cnn", "--slo", "1s", "--out", str(out), "--json"]
    result = cli_runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == SUMMARY_KEYS
    assert (data["schema_version"], data["kind"], data["interrupted"]) == (SCHEMA_VERSION, "replay", False)
    assert data["requests"] == data["ok"] == data["scheduled"] == arrivals.size and data["violations"] == 0
    assert data["settings"]["url"].endswith("/v2/models/small_cnn/infer") and data["settings"]["slo_ms"] == 1000.0
    table = pq.read_table(out)
    meta = table.schema.metadata
    assert meta[b"themis.kind"] == b"replay" and json.loads(meta[b"themis.replay.settings"])["trace"] == trace.name
    frame = table.to_pandas()
    assert len(frame) == arrivals.size and (frame["sent_s"] >= frame["scheduled_s"]).all()


def test_speedup_and_scale_reshape_the_trace(cli_runner, plain_server, llm_window, tmp_path) -> None:
    server = plain_server()
    trace, arrivals = llm_window(2.0)
    out = tmp_path / "fast.csv"
    args = ["replay", "--trace", str(trace), "--url", server.url, "--protocol", "v2-binary", "--server-model", "mlp", "--speedup", "4",
            "--scale", "2", "--out", str(out), "--json"]
    result = cli_runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["settings"]["speedup"] == 4.0 and data["settings"]["scale"] == 2.0
    rows = out.read_text().splitlines()
    assert len(rows) - 1 == data["requests"] == data["scheduled"]
    assert data["scheduled"] > arrivals.size  # scale 2 doubles the volume (Poisson-thinned per second)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "--url: give --url"),
        (["--url", "http://h", "--serve", "small_cnn"], "one of the two"),
        (["--url", "http://h"], "--protocol"),
        (["--url", "http://h", "--protocol", "v2", "--server-model", "my_model"], "--input-shape"),
        (["--url", "h:80", "--protocol", "v2", "--server-model", "mlp"], "--url: 'h:80' is not an http"),
        (["--url", "http://h", "--body-template", "missing.json"], "missing.json: file not found"),
        (["--url", "http://h", "--protocol", "v2", "--server-model", "mlp", "--speedup", "0"], "--speedup"),
        (["--serve", "small_cnn"], "--serve needs --plan"),
        (["--serve", "small_cnn", "--protocol", "v2"], "go with --url"),
        (["--url", "http://h", "--protocol", "v2", "--server-model", "mlp", "--out", "r.txt"], "--out: r.txt: use one of .json, .csv, .parquet"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli_runner, llm_window, tmp_path, extra, message) -> None:
    trace, _ = llm_window(1.0)
    out = [] if "--out" in extra else ["--out", str(tmp_path / "r.parquet")]
    result = cli_runner.invoke(app, ["replay", "--trace", str(trace), *out, *extra])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_an_existing_out_file_is_refused_unless_overwrite(cli_runner, llm_window, tmp_path) -> None:
    trace, _ = llm_window(1.0)
    out = tmp_path / "r.parquet"
    out.write_bytes(b"keep me")
    result = cli_runner.invoke(app, ["replay", "--trace", str(trace), "--url", "http://127.0.0.1:9", "--protocol", "v2", "--server-model", "mlp", "--out", str(out)])
    assert result.exit_code == 2 and "--overwrite" in result.stderr
    assert out.read_bytes() == b"keep me"


def _start_replay(trace: Path, url: str, out: Path) -> subprocess.Popen:
    themis = Path(sys.executable).with_name("themis")  # the installed console script, as a user runs it
    command = [str(themis), "replay", "--trace", str(trace), "--url", url, "--protocol", "v2", "--server-model", "small_cnn", "--out", str(out)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_file(path: Path, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert path.exists(), f"{path} was never written"


def test_kill_9_of_the_replayer_keeps_the_rows_written_so_far(plain_server, llm_window, tmp_path) -> None:
    server = plain_server()
    trace, arrivals = llm_window(10.0)
    out = tmp_path / "killed.parquet"
    process = _start_replay(trace, server.url, out)
    _wait_for_file(out)  # the first checkpoint, a few seconds in
    process.send_signal(signal.SIGKILL)
    process.wait()
    frame = pq.read_table(out).to_pandas()
    assert 0 < len(frame) < arrivals.size
    assert frame["request"].is_monotonic_increasing and (frame["status"] == "ok").all()


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_ends_with_130_and_every_sent_request_recorded(plain_server, llm_window, tmp_path, signal_number) -> None:
    server = plain_server(delay_ms=300)  # requests are still in flight when the signal lands
    trace, arrivals = llm_window(60.0)  # long enough that a slow start on a busy machine still meets the signal mid-run
    out = tmp_path / "stopped.parquet"
    process = _start_replay(trace, server.url, out)
    _wait_for_file(out)
    os.kill(process.pid, signal_number)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    table = pq.read_table(out)
    frame = table.to_pandas()
    assert 0 < len(frame) < arrivals.size
    assert set(frame["status"]) == {"ok", "cancelled"}
    assert table.schema.metadata[b"themis.replay.interrupted"] == b"true"
