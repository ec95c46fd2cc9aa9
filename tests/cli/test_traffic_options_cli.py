"""The traffic options every command that reads a trace shares (`themis.cli.options`): a request
log with its own time column can be planned, compared, checked, simulated and reported, not
only inspected; a second trace is never silently dropped; durations read alike everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from themis.cli.app import app
from themis.planner.traffic.loading import load_trace

PROFILES = Path(__file__).parents[1] / "data" / "profiles"
RESNET18 = str(PROFILES / "resnet18_cpu.parquet")


def _one_error_line(result, named: str) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("themis: error: ") and named in lines[0], result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def request_log(tmp_path_factory, llm_trace_path) -> Path:
    """The real Azure LLM trace's arrivals as a request log whose time column has a name
    themis does not guess (`sent_at`), beside a second column, so --time-column is needed."""
    trace = load_trace(llm_trace_path)
    path = tmp_path_factory.mktemp("logs") / "requests.csv"
    arrivals = np.round(trace.arrivals_s, 6)
    lines = ["sent_at,user"] + [f"{t},{i % 7}" for i, t in enumerate(arrivals)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_without_the_time_column_the_log_is_refused(cli_runner, request_log) -> None:
    _one_error_line(cli_runner.invoke(app, ["plan", "--trace", str(request_log), "--profile", RESNET18, "--slo", "1s"]), "--time-column")


def test_every_traffic_command_reads_the_log_with_its_time_column(cli_runner, request_log, tmp_path) -> None:
    log = ["--trace", str(request_log), "--time-column", "sent_at", "--format", "request_log"]
    plan = tmp_path / "plan.json"
    planned = cli_runner.invoke(app, ["plan", *log, "--profile", RESNET18, "--slo", "2s", "--out", str(plan), "--json"])
    assert planned.exit_code == 0, planned.output
    assert json.loads(planned.stdout)["trace_fingerprint"]["requests"] == load_trace(request_log, time_column="sent_at").requests
    for args in (
        ["simulate", "--plan", str(plan), *log, "--profile", RESNET18, "--json"],
        ["compare", *log, "--profile", RESNET18, "--slo", "2s", "--policies", "static,horizontal", "--json"],
        ["check", *log, "--profile", RESNET18, "--slo", "2s", "--budget-replicas", "40", "--json"],
        ["report", *log, "--plan", str(plan), "--html", str(tmp_path / "report.html"), "--json"],
        ["trace", "inspect", str(request_log), "--time-column", "sent_at", "--json"],
        ["forecast", str(request_log), "--time-column", "sent_at", "--interval", "5m", "--json"],
    ):
        result = cli_runner.invoke(app, args)
        assert result.exit_code == 0, (args[0], result.output)


@pytest.mark.parametrize("command", ["simulate", "report"])
def test_a_second_trace_is_never_silently_dropped(cli_runner, llm_trace_path, functions_2021_path, tmp_path, command) -> None:
    plan = tmp_path / "plan.json"
    assert cli_runner.invoke(app, ["plan", "--trace", str(llm_trace_path), "--profile", RESNET18, "--slo", "2s", "--out", str(plan)]).exit_code == 0
    two = ["--trace", str(llm_trace_path), "--trace", str(functions_2021_path)]
    args = {"simulate": ["simulate", "--plan", str(plan), *two, "--profile", RESNET18],
            "report": ["report", *two, "--html", str(tmp_path / "r.html")]}[command]
    _one_error_line(cli_runner.invoke(app, args), "combined")


def test_bundled_traces_are_named_by_their_short_name(cli_runner) -> None:
    result = cli_runner.invoke(app, ["plan", "--trace", "azure_llm_2023_code", "--profile", RESNET18, "--slo", "2s", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["trace_fingerprint"]["name"] == "azure_llm_2023_code.csv"


@pytest.mark.parametrize(("interval", "seconds"), [("60", 60.0), ("60s", 60.0), ("5m", 300.0), ("400ms", 0.4)])
def test_trace_inspect_reads_durations_as_plan_does(cli_runner, llm_trace_path, interval, seconds) -> None:
    result = cli_runner.invoke(app, ["trace", "inspect", str(llm_trace_path), "--interval", interval, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["interval_s"] == pytest.approx(seconds)


def test_forecast_reads_durations_as_plan_does(cli_runner, llm_trace_path) -> None:
    minutes = cli_runner.invoke(app, ["forecast", str(llm_trace_path), "--interval", "5m", "--window", "400ms", "--method", "last", "--json"])
    seconds = cli_runner.invoke(app, ["forecast", str(llm_trace_path), "--interval", "300", "--window", "0.4", "--method", "last", "--json"])
    assert minutes.exit_code == 0, minutes.output
    assert json.loads(minutes.stdout) == json.loads(seconds.stdout)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["forecast", "azure_llm_2023_code", "--interval", "soon"], "--interval"),
        (["forecast", "azure_llm_2023_code", "--window", "0s"], "--window"),
        (["forecast", "azure_llm_2023_code", "--interval", "60s", "--window", "5m"], "--window"),
        (["trace", "inspect", "azure_llm_2023_code", "--interval", "-5s"], "--interval"),
        (["compare", "--trace", "azure_llm_2023_code", "--profile", RESNET18, "--slo", "1s", "--policies", ","], "--policies"),
        (["plan", "--trace", "azure_llm_2023_code", "--profile", RESNET18, "--slo", "1s", "--format", "parquet"], "--format"),
    ],
)
def test_bad_traffic_options_are_one_line(cli_runner, args, named) -> None:
    _one_error_line(cli_runner.invoke(app, args), named)
