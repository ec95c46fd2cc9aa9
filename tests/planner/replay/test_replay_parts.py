"""The replay's parts on their own: v2 bodies, body templates, the CPU pool, the per-request log and its summary."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from themis.planner.model.serving import Group, Schedule, Stage, StageAllocation, Step
from themis.planner.replay import v2
from themis.planner.replay.cpus import CpuPool
from themis.planner.replay.errors import ReplayInputError
from themis.planner.replay.request_log import COLUMNS, ERROR, OK, TIMEOUT, RequestLog
from themis.planner.replay.summary import summarize
from themis.planner.replay.targets import parse_cpu_ids
from themis.planner.replay.templates import file_template, protocol_template
from themis.planner.replay.timeline import speed_up_arrivals, speed_up_schedule

shapes = st.lists(st.integers(1, 6), min_size=1, max_size=4).map(lambda dims: [1, *dims])
dtypes = st.sampled_from(sorted(v2.DATATYPES))


# --------------------------------------------------------------------------- v2 protocol


@given(shape=shapes, dtype=dtypes)
def test_v2_bodies_read_back_to_their_shape(shape, dtype) -> None:
    body = v2.json_body("x", shape, dtype)
    data = json.loads(body)["inputs"][0]
    assert (data["shape"], data["datatype"], len(data["data"])) == (shape, v2.DATATYPES[dtype][0], math.prod(shape))
    assert v2.request_shape(body, {}) == shape
    binary, headers = v2.binary_body("x", shape, dtype)
    assert len(binary) == int(headers[v2.HEADER_LENGTH]) + math.prod(shape) * v2.DATATYPES[dtype][1]
    assert v2.request_shape(binary, headers) == shape


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        (b"not json", {}, "not JSON"),
        (b'{"outputs": []}', {}, "no 'inputs'"),
        (b'{"inputs": [{"shape": [1, -3]}]}', {}, "positive integers"),
        (b'{"inputs": [{"shape": [1, 3], "parameters": {"binary_data_size": 8}}]}', {}, "body carries 0"),
        (b'{"inputs": [{"shape": [1]}]}', {v2.HEADER_LENGTH: "999"}, "does not fit"),
    ],
)
def test_v2_requests_that_are_not_say_why(body, headers, reason) -> None:
    with pytest.raises(ValueError, match=reason):
        v2.request_shape(body, headers)


# --------------------------------------------------------------------------- templates


def test_a_body_template_gets_its_input_batch_and_request_filled_in(tmp_path) -> None:
    path = tmp_path / "body.json"
    path.write_text('{"id": {{request}}, "batch": {{batch}}, "instances": {{ input }}}', encoding="utf-8")
    template = file_template("http://localhost:8080/predict", path, (2, 3), "float32")
    first, later = json.loads(template.body_for(0)), json.loads(template.body_for(41))
    assert (first["id"], later["id"], first["batch"]) == (0, 41, 1)
    assert np.asarray(first["instances"]).shape == (1, 2, 3) and not np.any(first["instances"])
    assert template.url == "http://localhost:8080/predict"


def test_a_template_without_per_request_parts_sends_the_same_bytes() -> None:
    template = protocol_template("http://h:1/", "v2-binary", "resnet18", (3, 8, 8), "float16", "INPUT__0")
    assert template.url == "http://h:1/v2/models/resnet18/infer"
    assert template.body_for(0) is template.body_for(7)
    assert v2.request_shape(template.body, template.headers) == [1, 3, 8, 8]


@pytest.mark.parametrize(
    ("text", "message"),
    [("{\"x\": {{inptu}}}", "unknown placeholder {{inptu}}"), ("{\"x\": {{input}},}", "not valid JSON")],
)
def test_a_bad_body_template_names_the_file(tmp_path, text, message) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ReplayInputError, match=message) as error:
        file_template("http://localhost/x", path, (4,), "float32")
    assert "bad.json" in str(error.value)


@pytest.mark.parametrize(
    ("url", "protocol", "model", "option"),
    [("localhost:8000", "v2", "m", "--url"), ("http://h", "grpc", "m", "--protocol"), ("http://h", "v2", "", "--server-model")],
)
def test_bad_protocol_options_name_the_option(url, protocol, model, option) -> None:
    with pytest.raises(ReplayInputError, match=option):
        protocol_template(url, protocol, model, (4,), "float32", "input")


# --------------------------------------------------------------------------- CPU pool


@given(st.sets(st.integers(0, 63), min_size=1))
def test_cpu_lists_read_back_as_taskset_writes_them(cpus) -> None:
    assert parse_cpu_ids(",".join(map(str, sorted(cpus)))) == tuple(sorted(cpus))
    low, high = min(cpus), max(cpus)
    assert parse_cpu_ids(f"{low}-{high}") == tuple(range(low, high + 1))


@pytest.mark.parametrize("text", ["", "a", "1,", "3-1", "-2", "1.5"])
def test_a_bad_cpu_list_names_the_option(text) -> None:
    with pytest.raises(ReplayInputError, match="--cpus"):
        parse_cpu_ids(text)


@given(pool=st.lists(st.integers(0, 15), min_size=1, max_size=8, unique=True), asks=st.lists(st.integers(1, 10), max_size=8))
def test_the_cpu_pool_shares_cpus_only_when_it_must(pool, asks) -> None:
    cpus = CpuPool(pool)
    taken = [cpus.take(cores) for cores in asks]
    for cores, got in zip(asks, taken):
        assert len(got) == min(cores, len(pool)) == len(set(got)) and set(got) <= set(pool)
    assert sum(cpus.holders.values()) == sum(len(g) for g in taken)
    assert cpus.oversubscribed == (sum(asks) > len(pool))
    for got in taken:
        cpus.release(got)
    assert not any(cpus.holders.values())


def test_a_resize_keeps_the_cpus_a_replica_has_and_cpu_0_is_used_last() -> None:
    cpus = CpuPool([0, 1, 2, 3])
    first = cpus.take(1)
    assert first == [3]
    assert cpus.take(3, keep=first) == [1, 2, 3]
    assert cpus.take(1, keep=[1, 2, 3]) == [1]


# --------------------------------------------------------------------------- log and summary


def test_the_log_writes_finished_requests_in_order_and_the_summary_counts_failures_as_violations() -> None:
    log = RequestLog(np.array([0.0, 0.1, 0.2, 0.3, 0.4]))
    for i in range(5):
        log.mark_sent(i, log.scheduled_s[i] + 0.001)
    log.mark_done(3, 0.35, OK, 200)
    log.mark_done(0, 0.05, OK, 200)
    log.mark_done(1, 0.4, TIMEOUT, 0, "no answer")
    log.mark_done(2, 0.21, ERROR, 0, "refused")
    snapshot = log.snapshot()
    log.mark_done(4, 0.5, OK, 200)
    frame = snapshot.frame()
    assert list(frame.columns) == list(COLUMNS)
    assert frame["request"].tolist() == [0, 1, 2, 3] and frame["status"].tolist() == ["ok", "timeout", "error", "ok"]
    assert frame["error"].tolist() == ["", "no answer", "refused", ""]
    summary = summarize(log, slo_ms=60.0)
    assert (summary.requests, summary.ok, summary.failed, summary.violations) == (5, 3, 2, 3)  # 100 ms > 60 ms, and both failures
    assert summary.statuses == {"ok": 3, "timeout": 1, "error": 1}
    assert summary.p50_ms == pytest.approx(100.0) and summary.p95_ms is None  # failures are infinitely late


def test_speedup_divides_arrivals_and_the_plan_but_not_its_delays() -> None:
    step = StageAllocation((Group(1, 1),), 1)
    plan = Schedule("static", 100.0, 99.0, 60.0, None, 30.0, 1.0, (Stage("m", "m"),), [Step(0, 60, 1, (step,)), Step(60, 120, 1, (step,))])
    fast = speed_up_schedule(plan, 10.0)
    assert [(s.t_start_s, s.t_end_s) for s in fast.steps] == [(0.0, 6.0), (6.0, 12.0)]
    assert (fast.cold_start_s, fast.resize_s, fast.interval_s) == (30.0, 1.0, 6.0)
    np.testing.assert_allclose(speed_up_arrivals(np.array([0.0, 5.0]), 2.5), [0.0, 2.0])
    with pytest.raises(ReplayInputError, match="--speedup"):
        speed_up_arrivals(np.array([1.0]), 0.0)
