"""`themis forecast TRACE`: rolling peak-rate forecasts without look-ahead, or their backtest."""

from __future__ import annotations

from pathlib import Path

import typer

from themis.cli import options as opt
from themis.cli import output
from themis.cli.trace import TRACES_ARGUMENT, load, optional_duration_s
from themis.planner.choices import DAY_S, FORECAST_METHODS, WEEK_S
from themis.planner.errors import ForecastError

SEASONS_S = {"day": DAY_S, "week": WEEK_S}


def forecast(
    traces: list[Path] = TRACES_ARGUMENT,
    method: str = typer.Option("auto", "--method", help=f"One of {', '.join(FORECAST_METHODS)}, or 'all' (with --backtest)."),
    interval: str = typer.Option("60s", "--interval", help="Forecast interval (e.g. 60s, 5m; a bare number is seconds): one forecast per interval."),
    window: str = typer.Option("1s", "--window", help="Peak window (e.g. 1s, 400ms): the forecast targets the busiest window inside each interval."),
    season: str = typer.Option("day", "--season", help="Season of seasonal_naive / holt_winters: day, week, or seconds."),
    run_backtest: bool = typer.Option(
        False, "--backtest", help="Score each method: planning loss, MAPE, under-prediction rate, over-provisioning ratio."
    ),
    format: str = opt.FORMAT_OPTION,
    time_column: str = opt.TIME_COLUMN_OPTION,
    app: str = opt.APP_OPTION,
    function: str = opt.FUNCTION_OPTION,
    top: int = opt.TOP_OPTION,
    scale: float = opt.SCALE_OPTION,
    as_json: bool = output.JSON_OPTION,
    out: Path = output.OUT_OPTION,
) -> None:
    """Forecast the peak rate of each interval from the intervals before it (no look-ahead).

    [b]Examples[/b]

      themis forecast azure_llm_2023_code.csv --method all --interval 60s --backtest

      themis forecast d01.csv d02.csv --top 10 --method holt_winters --out forecast.csv
    """
    interval = optional_duration_s(interval, "--interval")
    window = optional_duration_s(window, "--window")
    if window > interval:
        raise ForecastError(f"{window:g} s is longer than the --interval ({interval:g} s) it is the peak of", option="--window")
    season_s = _season_s(season)
    methods = list(FORECAST_METHODS) if method == "all" else [method]
    if method != "all" and method not in FORECAST_METHODS:
        raise ForecastError(f"unknown method {method!r}; use one of {', '.join(FORECAST_METHODS)} or all", option="--method")
    from themis.planner.traffic.backtest import backtest_trace
    from themis.planner.traffic.forecast import forecast_trace
    from themis.reports.trace_tables import show_backtest, show_forecast

    trace = load(traces, format, function, app, top, time_column, scale)
    if run_backtest:
        result = backtest_trace(trace, methods, interval_s=interval, window_s=window, season_s=season_s)
        output.render(result, as_json=as_json, out=out, show=show_backtest(result))
        return
    if method == "all":
        raise ForecastError("'all' compares methods: add --backtest", option="--method")
    result = forecast_trace(trace, method, interval_s=interval, window_s=window, season_s=season_s)
    output.render(result, as_json=as_json, out=out, show=show_forecast(result))


def _season_s(text: str) -> float:
    if text in SEASONS_S:
        return SEASONS_S[text]
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ForecastError(f"use day, week or a positive number of seconds, not {text!r}", option="--season")
    return value
