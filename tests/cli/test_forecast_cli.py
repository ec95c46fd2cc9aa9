"""`themis forecast` in-process: backtest table and JSON, rolling forecasts, bad options."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from themis.cli.app import app
from themis.planner.traffic.forecast import METHODS

SCORE_KEYS = {"method", "planning_loss", "mape_pct", "under_rate", "over_provisioning_ratio", "intervals"}


@pytest.mark.slow  # includes the LSTM (torch import and training)
def test_backtest_all_methods_json(cli_runner, llm_trace_path) -> None:
    result = cli_runner.invoke(app, ["forecast", str(llm_trace_path), "--method", "all", "--interval", "60", "--backtest", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["schema_version"] == 1 and payload["kind"] == "forecast_backtest"
    assert [m["method"] for m in payload["methods"]] == list(METHODS)
    assert all(set(m) == SCORE_KEYS and m["intervals"] == 57 for m in payload["methods"])


def test_backtest_table_and_out(cli_runner, llm_trace_path, tmp_path) -> None:
    out = tmp_path / "scores.csv"
    args = ["forecast", str(llm_trace_path), "--method", "moving_max", "--interval", "120", "--backtest", "--out", str(out)]
    result = cli_runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "moving_max" in result.stdout and "MAPE" in result.stdout and "over-provisioning" in result.stdout
    assert "planning loss" in result.stdout
    frame = pd.read_csv(out)
    assert set(frame.columns) == SCORE_KEYS
    assert frame["method"].tolist() == ["moving_max"]


def test_rolling_forecast_json_uses_only_the_past(cli_runner, functions_2019_path) -> None:
    result = cli_runner.invoke(app, ["forecast", str(functions_2019_path), "--method", "last", "--interval", "300", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["intervals"]
    assert len(rows) == 24 * 12 and rows[0]["forecast_rps"] is None
    assert all(rows[t]["forecast_rps"] == rows[t - 1]["peak_rps"] for t in range(1, len(rows)))
    assert rows[1]["t_start_s"] == 300


@pytest.mark.parametrize(
    "args, option",
    [
        (["--method", "prophet"], "--method"),
        (["--method", "all"], "--method"),  # all needs --backtest
        (["--interval", "30"], "--interval"),  # not a multiple of the 60 s per-minute counts
        (["--season", "fortnight"], "--season"),
        (["--interval", "0"], "--interval"),
    ],
)
def test_bad_options_exit_2(cli_runner, functions_2019_path, args, option) -> None:
    result = cli_runner.invoke(app, ["forecast", str(functions_2019_path), *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and option in lines[0]
