"""The open-loop replayer against a real local HTTP server (its own process), on real trace arrivals."""

from __future__ import annotations

import threading

import numpy as np
import pyarrow.parquet as pq
from support.replay_support import llm_arrivals

from themis.planner.replay.replayer import ReplayConfig, Replayer, run_event_loop
from themis.planner.replay.request_log import RequestLog
from themis.planner.replay.summary import summarize
from themis.planner.replay.templates import protocol_template


def replay(url: str, arrivals: np.ndarray, config: ReplayConfig = ReplayConfig(), **hooks) -> tuple[RequestLog, Replayer]:
    log = RequestLog(arrivals)
    replayer = Replayer(protocol_template(url, "v2", "small_cnn", (3, 32, 32), "float32", "input"), log, config, **hooks)
    run_event_loop(replayer.run)
    return log, replayer


def test_every_request_is_sent_once_at_its_time_and_answered(plain_server) -> None:
    server = plain_server(delay_ms=2)
    arrivals = llm_arrivals(3.0)
    progress = []
    log, replayer = replay(server.url, arrivals, on_progress=progress.append)
    frame = log.frame()
    assert not replayer.interrupted
    assert len(frame) == arrivals.size > 50
    assert frame["request"].tolist() == list(range(arrivals.size))
    np.testing.assert_array_equal(frame["scheduled_s"], arrivals)
    assert (frame["scheduled_s"] <= frame["sent_s"]).all() and (frame["sent_s"] <= frame["completed_s"]).all()
    np.testing.assert_allclose(frame["latency_ms"], (frame["completed_s"] - frame["scheduled_s"]) * 1000.0)
    assert set(frame["status"]) == {"ok"} and set(frame["http_status"]) == {200} and set(frame["error"]) == {""}
    # the server's own 2 ms delay is inside every latency (less uvloop's 1 ms timer granularity)
    assert (frame["latency_ms"] >= 2.0 - 1.0).all()
    assert progress[-1].sent == progress[-1].finished == arrivals.size
    summary = summarize(log, slo_ms=1000.0)
    assert (summary.requests, summary.ok, summary.failed, summary.violations) == (arrivals.size, arrivals.size, 0, 0)


def test_a_server_killed_mid_run_leaves_every_request_recorded(plain_server, tmp_path) -> None:
    server = plain_server()
    arrivals = llm_arrivals(3.0)
    kill_at_s = 1.5
    checkpoints = []

    def checkpoint(snapshot: RequestLog) -> None:
        path = tmp_path / f"checkpoint{len(checkpoints)}.parquet"
        snapshot.frame().to_parquet(path)
        checkpoints.append(path)

    timer = threading.Timer(ReplayConfig().lead_s + kill_at_s, server.kill)
    timer.start()
    try:
        log, _ = replay(server.url, arrivals, ReplayConfig(checkpoint_s=0.5), on_checkpoint=checkpoint)
    finally:
        timer.cancel()
    frame = log.frame()
    assert len(frame) == arrivals.size
    before = frame[frame["scheduled_s"] < kill_at_s - 0.3]
    after = frame[frame["scheduled_s"] > kill_at_s + 0.3]
    assert len(before) > 0 and (before["status"] == "ok").all()
    assert len(after) > 0 and (after["status"] == "error").all()
    assert after["error"].str.len().gt(0).all() and (after["http_status"] == 0).all()
    assert checkpoints, "no checkpoint was written during a 3 s replay"
    partial = pq.read_table(checkpoints[0]).to_pandas()  # each checkpoint is a complete, readable file
    assert 0 < len(partial) < arrivals.size


def test_http_errors_and_timeouts_are_recorded_with_their_reason(plain_server) -> None:
    arrivals = llm_arrivals(1.0)
    refused = plain_server(status=503)
    frame = replay(refused.url, arrivals)[0].frame()
    assert set(frame["status"]) == {"http_error"} and set(frame["http_status"]) == {503}
    assert frame["error"].str.startswith("HTTP 503").all()

    slow = plain_server(delay_ms=2000)
    frame = replay(slow.url, arrivals[:5], ReplayConfig(timeout_s=0.2))[0].frame()
    assert set(frame["status"]) == {"timeout"}
    assert (frame["latency_ms"] > 150).all()  # the event loop's timers are millisecond-grained


def test_no_server_at_all_is_one_error_row_per_request() -> None:
    arrivals = llm_arrivals(0.5)
    log, _ = replay("http://127.0.0.1:9", arrivals)  # the discard port: nothing listens there
    frame = log.frame()
    assert len(frame) == arrivals.size and set(frame["status"]) == {"error"}
    summary = summarize(log, slo_ms=None)
    assert summary.violations == summary.failed == arrivals.size and summary.p50_ms is None
