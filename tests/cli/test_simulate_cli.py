"""`themis simulate --plan plan.json --trace T` in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from themis.cli.app import app
from themis.common.atomic import write_text_atomic
from themis.planner.model.config import PlanConfig
from themis.planner.model.latency import load_latency_models
from themis.planner.model.serving import Stage
from themis.planner.optimise.plan import plan
from themis.planner.traffic.loading import load_trace

GOLDEN_PROFILES = Path(__file__).parents[1] / "data" / "profiles"


PROFILE = GOLDEN_PROFILES / "resnet18_cpu.parquet"


@pytest.fixture(scope="module")
def plan_path(tmp_path_factory, llm_trace_path):
    trace = load_trace(llm_trace_path)
    model = load_latency_models([PROFILE])["resnet18"]
    result = plan(trace, [(Stage("resnet18", "resnet18"), model)], PlanConfig(slo_ms=300.0, node_cores=4), "horizontal")
    path = tmp_path_factory.mktemp("plan") / "plan.json"
    write_text_atomic(path, json.dumps(result.to_dict()))
    return path, trace.requests


def test_simulate_json(cli_runner, plan_path, llm_trace_path):
    path, requests = plan_path
    args = ["simulate", "--plan", str(path), "--trace", str(llm_trace_path), "--profile", str(PROFILE), "--json"]
    result = cli_runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["kind"] == "simulation" and data["policy"] == "horizontal"
    assert data["requests"] == requests
    assert data["trace_start"] is not None
    for key in ("violations", "violation_rate", "p50_ms", "p95_ms", "p99_ms", "core_seconds", "scale_actions"):
        assert key in data


def test_simulate_per_request_parquet(cli_runner, plan_path, llm_trace_path, tmp_path):
    path, requests = plan_path
    out = tmp_path / "requests.parquet"
    args = ["simulate", "--plan", str(path), "--trace", str(llm_trace_path), "--profile", str(PROFILE), "--out", str(out)]
    result = cli_runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "simulation of horizontal" in result.stdout
    frame = pd.read_parquet(out)
    assert len(frame) == requests and list(frame.columns) == ["arrival_s", "latency_ms", "violated", "counted", "slo_ms"]


def test_simulate_from_a_warm_up(cli_runner, plan_path, llm_trace_path):
    path, requests = plan_path
    args = ["simulate", "--plan", str(path), "--trace", str(llm_trace_path), "--profile", str(PROFILE), "--warmup", "10m", "--json"]
    result = cli_runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    arrivals = load_trace(llm_trace_path).request_arrivals(0)
    assert data["warmup_s"] == 600.0 and data["requests"] == int((arrivals >= 600.0).sum()) < requests
    args[args.index("10m")] = "2h"
    result = cli_runner.invoke(app, args[:-1])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--warmup" in lines[0] and "nothing of the" in lines[0]


def test_simulate_bad_plan_file(cli_runner, tmp_path, llm_trace_path):
    bad = tmp_path / "plan.json"
    bad.write_text("{not json")
    args = ["simulate", "--plan", str(bad), "--trace", str(llm_trace_path), "--profile", str(PROFILE)]
    result = cli_runner.invoke(app, args)
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "plan.json" in result.stderr


@pytest.fixture(scope="module")
def planned_by_cli(tmp_path_factory, llm_trace_path) -> Path:
    """A plan written by `themis plan`, which records the trace it was made on."""
    from typer.testing import CliRunner

    path = tmp_path_factory.mktemp("cli_plan") / "plan.json"
    result = CliRunner().invoke(app, ["plan", "--trace", str(llm_trace_path), "--profile", str(PROFILE), "--slo", "2s", "--out", str(path)])
    assert result.exit_code == 0, result.output
    return path


def test_the_plan_records_its_trace(planned_by_cli, llm_trace_path) -> None:
    trace = load_trace(llm_trace_path)
    recorded = json.loads(planned_by_cli.read_text())["trace_fingerprint"]
    assert recorded["name"] == llm_trace_path.name and recorded["requests"] == trace.requests
    assert recorded["intervals"] == len(trace.counts) and len(recorded["counts_sha256"]) == 16


@pytest.mark.parametrize("other", [["--trace", "azure_functions_2021"], ["--trace", "azure_llm_2023_code", "--scale", "2"]])
def test_simulate_refuses_a_plan_made_on_another_trace(cli_runner, planned_by_cli, other) -> None:
    result = cli_runner.invoke(app, ["simulate", "--plan", str(planned_by_cli), *other, "--profile", str(PROFILE)])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "was planned on azure_llm_2023_code.csv (3,436 intervals, 8,819 requests" in line and "not on the trace given" in line


def test_simulate_takes_a_plan_without_a_fingerprint_on_trust(cli_runner, planned_by_cli, tmp_path) -> None:
    data = json.loads(planned_by_cli.read_text())
    del data["trace_fingerprint"]  # a plan written before plans recorded their trace
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data))
    result = cli_runner.invoke(app, ["simulate", "--plan", str(old), "--trace", "azure_functions_2021", "--profile", str(PROFILE), "--json"])
    assert result.exit_code == 0, result.output
