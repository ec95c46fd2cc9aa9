"""`themis replay --serve`: a real plan on real replica processes (small_cnn), replayed and compared.

The plan opens with one 1-core replica at batch 4, resizes it to 2 cores at 2 s, and at 3 s
goes to two 1-core replicas (the running one resized back, a second one booting, ready
well before the trace ends): every kind of step the serving model has, on real processes,
in a few seconds of real traffic.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from support.replay_support import SMALL_CNN_PROFILE as GOLDEN
from support.replay_support import write_plan

from themis.cli.app import app

pytestmark = pytest.mark.slow


def test_a_plan_with_a_resize_and_a_new_replica_runs_for_real_and_is_compared(cli_runner, llm_window, tmp_path) -> None:
    plan = write_plan(tmp_path / "plan.json", [(0, 2, [(1, 1)]), (2, 3, [(1, 2)]), (3, 9, [(2, 1)])])
    trace, arrivals = llm_window(9.0)
    out = tmp_path / "served.parquet"
    args = ["replay", "--trace", str(trace), "--serve", "small_cnn", "--plan", str(plan), "--profile", str(GOLDEN), "--out", str(out), "--json"]
    result = cli_runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    frame = pq.read_table(out).to_pandas()
    assert len(frame) == data["requests"] == data["ok"] == arrivals.size
    assert (frame["scheduled_s"] <= frame["sent_s"]).all() and (frame["sent_s"] <= frame["completed_s"]).all()

    server = data["server"]
    assert server["served_requests"] == arrivals.size  # each request served exactly once
    first, second = server["replicas"]
    assert first["opening"] and not second["opening"] and second["requested_s"] >= 3.0
    assert second["ready_s"] > second["requested_s"] and second["cold_start_s"] > 0 and second["load_s"] > 0
    assert [(r["from_cores"], r["to_cores"]) for r in server["resizes"]] == [(1, 2), (2, 1)]
    assert all(r["applied_s"] >= r["requested_s"] >= t for r, t in zip(server["resizes"], (2.0, 3.0)))

    comparison = data["comparison"]
    real, simulated, measured, observed = comparison["runs"]
    assert real["requests"] == simulated["requests"] == measured["requests"] == observed["requests"] == arrivals.size
    # the plan allocates 1x1 core for 2 s, 1x2 for 1 s, 2x1 for 6 s: 16 core-seconds. The real resizes land
    # within milliseconds; in the simulation the second resize (asked 1 s after the first, with the
    # plan's 1 s delay) supersedes the first before it lands, so the replica stays at 1 core.
    assert real["core_seconds"] == pytest.approx(16.0, abs=0.5)
    assert simulated["core_seconds"] == pytest.approx(15.0)
    assert measured["cold_start_s"] == pytest.approx(second["cold_start_s"])
    assert sum(s["requests"] for s in comparison["steps"]) == arrivals.size
    cells = comparison["service_cells"]
    assert {c["cores"] for c in cells} <= {1, 2} and max(c["batch"] for c in cells) <= 4
    assert sum(c["batches"] for c in cells) == server["batches"]
    assert comparison["delays"]["plan_cold_start_s"] == 30.0 and comparison["delays"]["measured_resize_s"] >= 0


def _replica_pids() -> list[int]:
    """Replica processes started by this (test) process."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == os.getpid() and b"themis.profiler.replica" in cmdline:
            pids.append(int(entry))
    return pids


def test_a_replica_killed_mid_run_fails_its_requests_and_the_rest_are_still_recorded(cli_runner, llm_window, tmp_path) -> None:
    plan = write_plan(tmp_path / "plan.json", [(0, 4, [(1, 1)])])
    trace, arrivals = llm_window(4.0)
    out = tmp_path / "dead.parquet"
    stop = threading.Event()

    def kill_the_replica_once_serving() -> None:  # the first checkpoint is written 2 s into the trace
        while not out.exists() and not stop.wait(0.05):
            pass
        for pid in _replica_pids():
            os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_the_replica_once_serving, daemon=True)
    killer.start()
    args = ["replay", "--trace", str(trace), "--serve", "small_cnn", "--plan", str(plan), "--profile", str(GOLDEN),
            "--timeout", "1s", "--out", str(out), "--json"]
    try:
        result = cli_runner.invoke(app, args)
    finally:
        stop.set()
        killer.join()
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    frame = pq.read_table(out).to_pandas()
    assert len(frame) == arrivals.size
    assert 0 < data["ok"] < arrivals.size
    failed = frame[frame["status"] != "ok"]
    assert set(failed["status"]) <= {"http_error", "timeout"} and failed["error"].str.len().gt(0).all()
    assert any("died" in failure or "exited" in failure for failure in data["server"]["failures"])


def test_a_model_that_cannot_load_in_its_replica_is_bad_input(cli_runner, llm_window, tmp_path, monkeypatch) -> None:
    (tmp_path / "broken_models.py").write_text("def small_cnn():\n    raise RuntimeError('weights missing')\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    plan = write_plan(tmp_path / "plan.json", [(0, 2, [(1, 1)])])
    trace, _ = llm_window(1.0)
    out = tmp_path / "never.parquet"
    args = ["replay", "--trace", str(trace), "--serve", "broken_models:small_cnn", "--input-shape", "3x32x32", "--plan", str(plan),
            "--profile", str(GOLDEN), "--out", str(out)]
    result = cli_runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("themis: error:")]
    assert len(errors) == 1 and "cannot load the model: RuntimeError: weights missing" in errors[0]
    assert not out.exists()  # nothing was sent, nothing to keep
