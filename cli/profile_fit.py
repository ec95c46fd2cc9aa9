"""`themis profile fit FILE`: how well the latency model predicts cells it did not measure."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from themis.cli import options as opt
from themis.cli import output

if TYPE_CHECKING:
    from themis.planner.model.fit_report import FitReports


def fit(
    file: Path = typer.Argument(..., help="A profile written by `themis profile`."),
    model: str = opt.MODEL_OPTION,
    as_json: bool = output.JSON_OPTION,
    out: Path = output.OUT_OPTION,
) -> None:
    """Fit l(b,c) = (g*b + e)/c + d*b + h and interpolation; report their held-out errors.

    Leave-one-out over the measured cells, and the largest core count held out entirely
    (what planning for bigger nodes than the one measured costs in accuracy). Warns when
    the fit is degenerate (g = e = 0 or g = d = 0) or its leave-one-out error is over 25%.

    [b]Example[/b]: themis profile fit resnet18.parquet --json
    """
    from themis.planner.model.fit_report import FitReports, fit_report
    from themis.profiler.table import read_profile

    report = fit_report(read_profile(file), model)
    reports = report if isinstance(report, FitReports) else FitReports((report,))
    output.render(reports, as_json=as_json, out=out, show=lambda console: _show(console, reports))


def _show(console: Console, reports: FitReports) -> None:
    table = Table(title="latency model fit (mean absolute % error on cells not used to fit)", title_justify="left")
    for column in ("model", "device", "cells", "chosen", "LOO amdahl", "LOO interp.", "held-out cores", "held-out amdahl", "held-out interp.", "g, e, d, h (ms)"):
        table.add_column(column, justify="left" if column in ("model", "device", "chosen") else "right")
    for r in reports.reports:
        held = r.heldout_cores_mape
        table.add_row(
            r.model, r.device, str(r.cells), r.method,
            _pct(r.loo_mape.get("amdahl")), _pct(r.loo_mape.get("interpolate")),
            str(r.heldout_cores or "-"), _pct(held.get("amdahl")), _pct(held.get("interpolate")),
            ", ".join(f"{r.coef[k]:.3g}" for k in ("g", "e", "d", "h")),
        )
    console.print(table)
    for r in reports.reports:
        for warning in r.warnings:
            console.print(f"[yellow]warning[/yellow]: {r.model} on {r.device}: {warning}")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"
