"""`themis profile` end to end: real runs, JSON, resume after a real kill, one-line errors."""

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
from themis.profiler.devices import discover_gpus
from themis.profiler.table import read_environment, read_profile

GOLDEN = Path(__file__).parents[1] / "data" / "profiles"
THEMIS = [sys.executable, "-c", "from themis.cli.app import main; main()"]
FAST = ["--budget-s", "0.05", "--warmup-calls", "1", "--processes", "1"]
NO_GPU = pytest.mark.skipif(bool(discover_gpus()), reason="this machine has an NVIDIA GPU")
MEASURED = ("ok", "unstable", "contended")  # a shared machine decides which


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("themis: error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.slow
def test_profile_writes_parquet_and_prints_the_summary(cli_runner, tmp_path: Path) -> None:
    out = tmp_path / "cnn.parquet"
    result = cli_runner.invoke(app, ["profile", "small_cnn", "--cores", "1", "--batch-sizes", "1,4", *FAST, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "small_cnn on cpu" in result.stdout and "measured 2 cell(s)" in result.stdout
    assert "2 cells:" in result.stdout  # the summary line: how far to trust them
    assert sorted(read_profile(out).batch_size) == [1, 4]


@pytest.mark.slow
def test_profile_json_is_the_profile_contract(cli_runner, tmp_path: Path) -> None:
    out = tmp_path / "mlp.parquet"
    result = cli_runner.invoke(app, ["profile", "mlp", "--cores", "1", "--batch-sizes", "2", *FAST, "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"schema_version", "kind", "environment", "measurement", "cells", "measured_cells", "kept_cells", "summary"} <= set(data)
    assert data["schema_version"] == 2 and data["measurement"]["processes"] == 1
    (cell,) = data["cells"]
    assert (cell["model"], cell["batch_size"], cell["cores"], cell["cpu_limit"]) == ("mlp", 2, 1, "pin")
    assert cell["status"] in MEASURED and "samples_ms" not in cell  # raw calls: Parquet only
    assert cell["samples"] >= 100 or cell["status"] == "contended"  # a contended cell stops as soon as it is known to be
    assert cell["throughput_ips"] == pytest.approx(2000 / cell["mean_ms"])


def test_show_prints_a_stored_profile(cli_runner) -> None:
    result = cli_runner.invoke(app, ["profile", "show", str(GOLDEN / "small_cnn_cpu.parquet")])
    assert result.exit_code == 0, result.output
    assert "small_cnn on cpu" in result.stdout and "12 cells" in result.stdout


def test_show_json_and_export(cli_runner, tmp_path: Path) -> None:
    csv = tmp_path / "p.csv"
    result = cli_runner.invoke(app, ["profile", "show", str(GOLDEN / "mlp_cpu.parquet"), "--json", "--out", str(csv)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["kind"] == "profile" and len(data["cells"]) == 12
    assert data["environment"] == read_environment(GOLDEN / "mlp_cpu.parquet")
    assert csv.read_text().splitlines()[0].startswith("model,device_kind,device_name")


def test_profile_group_help_and_routing(cli_runner) -> None:
    group = cli_runner.invoke(app, ["profile", "--help"])
    assert group.exit_code == 0 and "show" in group.stdout and "themis profile resnet18" in group.stdout
    run = cli_runner.invoke(app, ["profile", "resnet18", "--help"])
    assert run.exit_code == 0 and "--batch-sizes" in run.stdout and "--resume" in run.stdout
    assert all(option in run.stdout for option in ("--processes", "--stability", "--cpu-limit"))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["resnet51"], "unknown model 'resnet51'"),
        (["mlp", "--batch-sizes", "1,two"], "--batch-sizes"),
        (["mlp", "--cores", "0"], "--cores"),
        (["mlp", "--cores", "999"], "only"),
        (["mlp", "--dtype", "float8"], "--dtype"),
        pytest.param(["mlp", "--device", "cuda"], "no NVIDIA GPU found", marks=NO_GPU),
        pytest.param(["mlp", "--device", "cuda:1"], "no NVIDIA GPU found", marks=NO_GPU),
        (["mlp", "--device", "cuda:99"], "--device"),
        (["mlp", "--device", "tpu"], "unknown device"),
        (["mlp", "--input-shape", "3xx"], "--input-shape"),
        (["mlp", "--out", "/no/such/dir/p.parquet"], "directory does not exist"),
        (["mlp", "--out", "profile.csv"], ".parquet"),
        (["mlp", "--min-samples", "20"], "a p99, which needs 100"),
        (["mlp", "--processes", "0"], "--processes"),
        (["mlp", "--stability", "k=1"], "--stability"),
        (["mlp", "--stability", "steady"], "--stability"),
        (["mlp", "--cpu-limit", "shares"], "--cpu-limit"),
        (["mlp", "--budget-s", "0"], "--budget-s"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli_runner, args: list[str], expected: str) -> None:
    assert expected in _one_error_line(cli_runner.invoke(app, ["profile", *args]))


def test_out_inside_a_file_is_unwritable(cli_runner, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "directory does not exist" in _one_error_line(cli_runner.invoke(app, ["profile", "mlp", "--out", str(blocker / "p.parquet")]))


def test_corrupt_parquet_given_to_resume(cli_runner, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1" + os.urandom(64))
    line = _one_error_line(cli_runner.invoke(app, ["profile", "mlp", "--resume", "--out", str(corrupt)]))
    assert str(corrupt) in line and "Parquet" in line


def test_show_of_a_foreign_file(cli_runner, tmp_path: Path) -> None:
    other = tmp_path / "other.parquet"
    read_profile(GOLDEN / "mlp_cpu.parquet").to_parquet(other)
    assert "not a themis profile" in _one_error_line(cli_runner.invoke(app, ["profile", "show", str(other)]))


def test_json_errors_are_an_envelope(cli_runner) -> None:
    result = cli_runner.invoke(app, ["profile", "nope", "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["kind"] == "bad_input"


# Two columns (1 and 2 cores), one process each, many calls per cell (seconds per column), so
# a kill lands after the first column's six cells are written and before the second's are.
SLOW_GRID = ["profile", "mlp", "--cores", "1,2", "--batch-sizes", "1,2,4,8,16,32", "--min-samples", "2000", "--budget-s", "0.01",
             "--processes", "1"]
CELLS = 12


def _wait_for_rows(process: subprocess.Popen, out: Path, rows: int) -> None:
    deadline = time.monotonic() + 240
    while process.poll() is None and time.monotonic() < deadline and not (out.exists() and pq.read_metadata(out).num_rows >= rows):
        time.sleep(0.05)
    assert process.poll() is None, "the run finished before it could be interrupted; raise --min-samples"


@pytest.mark.slow
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs for two columns")
def test_resume_after_a_killed_run_measures_only_the_missing_cells(tmp_path: Path) -> None:
    out = tmp_path / "mlp.parquet"
    args = [*SLOW_GRID, "--out", str(out)]
    process = subprocess.Popen([*THEMIS, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_rows(process, out, CELLS // 2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = read_profile(out)
    assert CELLS // 2 <= len(before) < CELLS
    trusted = before[before.status == "ok"]
    resumed = subprocess.run([*THEMIS, *args, "--resume", "--json"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    data = json.loads(resumed.stdout)
    assert data["kept_cells"] == len(trusted) and data["measured_cells"] == CELLS - len(trusted)  # untrusted cells are measured again
    after = read_profile(out)
    assert sorted(zip(after.cores, after.batch_size)) == [(c, b) for c in (1, 2) for b in (1, 2, 4, 8, 16, 32)]
    assert after.status.isin(MEASURED).all()
    keys = ["cores", "batch_size"]
    kept = after.merge(trusted[keys], on=keys).drop(columns=["samples_ms", "process_samples", "sanity"])
    assert kept.equals(trusted.drop(columns=["samples_ms", "process_samples", "sanity"]).reset_index(drop=True))  # not measured again


@pytest.mark.slow
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs for two columns")
def test_ctrl_c_keeps_finished_cells_and_says_how_to_resume(tmp_path: Path) -> None:
    out = tmp_path / "mlp.parquet"
    process = subprocess.Popen([*THEMIS, *SLOW_GRID, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for_rows(process, out, CELLS // 2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "--resume" in stderr and "Traceback" not in stderr
    assert CELLS // 2 <= len(read_profile(out)) < CELLS


@pytest.mark.slow
def test_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    import pty

    args = [*THEMIS, "profile", "mlp", "--cores", "1", "--batch-sizes", "1,2", *FAST]
    piped = subprocess.run([*args, "--out", str(tmp_path / "piped.parquet")], capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0 and piped.stderr == ""
    primary, secondary = pty.openpty()
    process = subprocess.Popen([*args, "--out", str(tmp_path / "tty.parquet")], stdout=subprocess.DEVNULL, stderr=secondary)
    os.close(secondary)
    seen = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # the terminal closed: the process is gone
            break
        if not chunk:
            break
        seen += chunk
    assert process.wait(timeout=120) == 0
    os.close(primary)
    assert b"1 core, batch" in seen and b"2/2" in seen
