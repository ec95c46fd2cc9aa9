"""The fleet report: one self-contained HTML page in the style of `themis report`.

It shows, on one zoomable time axis (plotly, its JavaScript embedded so the page opens
offline), the fleet's cores and its node count per interval, per policy for a comparison
and for the plan otherwise; then the per-policy table (core-hours, node-hours, cost, the
distribution of per-service violation rates) and the services most at risk. A generated
fleet is labelled synthetic in the title and above every section. A PNG of the capacity
plot is written beside the page for documents and CI summaries.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from themis.common import __version__
from themis.common.atomic import write_atomic, write_text_atomic
from themis.common.errors import InputError
from themis.planner.fleet.compare import FleetComparison
from themis.planner.fleet.plan import FleetPlanResult
from themis.reports.html_parts import html_section, html_table
from themis.reports.interactive_plots import timeline_html
from themis.reports.timeline import INTERACTIVE_POINTS, STATIC_POINTS, TimeAxis, bucket_s, time_axis

if TYPE_CHECKING:
    from plotly.graph_objects import Figure

_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
_STYLE = """body { font-family: sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
img { max-width: 100%; }
.hint { color: #555; font-size: 0.9em; }
.synthetic { background: #fff3cd; border: 1px solid #e0c36c; padding: 0.4em 0.8em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }"""


def capacity_series(plan: FleetPlanResult | None = None, comparison: FleetComparison | None = None) -> tuple[pd.DataFrame, float]:
    """Per policy and interval: t_start_s, cores, nodes (the plan's policy is named `plan`)."""
    if comparison is not None:
        return comparison.nodes[["policy", "t_start_s", "cores", "nodes"]], comparison.interval_s
    totals = plan.totals.assign(policy="plan")
    return totals[["policy", "t_start_s", "cores", "nodes"]], plan.interval_s


def bucketed(series: pd.DataFrame, interval_s: float, points: int) -> pd.DataFrame:
    """The largest cores and nodes of each policy per round bucket (at most `points` a line)."""
    duration = float(series["t_start_s"].max() + interval_s) if len(series) else interval_s
    width = bucket_s(duration, interval_s, points)
    keyed = series.assign(t_start_s=(series["t_start_s"] // width) * width)
    return keyed.groupby(["policy", "t_start_s"], sort=False, as_index=False)[["cores", "nodes"]].max()


def render_fleet_report(path: str | Path, *, plan: FleetPlanResult | None = None, comparison: FleetComparison | None = None) -> Path:
    """Write the fleet report of a `FleetPlanResult` and/or a `FleetComparison` to `path`."""
    if plan is None and comparison is None:
        raise InputError("nothing to report: give a fleet plan or a fleet comparison")
    path = Path(path)
    source = comparison if comparison is not None else plan
    series, interval_s = capacity_series(plan, comparison)
    duration = float(series["t_start_s"].max() + interval_s) if len(series) else interval_s
    axis = time_axis(None, duration)
    banner = (f'<p class="synthetic">SYNTHETIC fleet, generated for benchmarks: not a real fleet ({html.escape(source.source)}).'
              "</p>") if source.synthetic else ""
    sections = []
    figure = capacity_figure(bucketed(series, interval_s, INTERACTIVE_POINTS), axis, interval_s)
    hint = ('<p class="hint">Drag across a stretch to zoom both rows; double-click to zoom out. Each line is the largest '
            "value per bucket. Nodes: the planned pods packed onto the node type by first-fit decreasing.</p>")
    sections.append(html_section("Fleet capacity over time", banner + hint + timeline_html(figure, div_id="fleet")))
    if comparison is not None:
        sections.append(html_section("Policies", banner + _policy_table(comparison.to_dict())))
        sections.append(html_section("Services most at risk, per policy", banner + _worst_by_policy(comparison.to_dict())))
    if plan is not None:
        sections.append(html_section("Plan totals", banner + _plan_table(plan.to_dict())))
        sections.append(html_section("Services most at risk", banner + _worst_planned(plan.to_dict())))
    png = _png(bucketed(series, interval_s, STATIC_POINTS), axis, interval_s)
    write_atomic(path.with_name(f"{path.stem}_capacity.png"), lambda tmp: tmp.write_bytes(png))
    title = "themis fleet report" + (" (synthetic fleet)" if source.synthetic else "")
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>\n'
            f"<style>\n{_STYLE}\n</style></head>\n<body><h1>{html.escape(title)}</h1><p>themis {html.escape(__version__)}: "
            f"{html.escape(source.source)}</p>\n" + "\n".join(sections) + "\n</body></html>\n")
    write_text_atomic(path, page)
    return path


def capacity_figure(series: pd.DataFrame, axis: TimeAxis, interval_s: float) -> Figure:
    """Cores and nodes per policy, two rows on one zoomable time axis."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.05)
    for k, (policy, part) in enumerate(series.groupby("policy", sort=False)):
        color = _PALETTE[k % len(_PALETTE)]
        x = axis.positions(part["t_start_s"].to_numpy())
        for row, column in ((1, "cores"), (2, "nodes")):
            fig.add_scatter(x=x, y=part[column], mode="lines", line={"shape": "hv", "color": color}, name=str(policy),
                            legendgroup=str(policy), showlegend=row == 1, row=row, col=1)
    fig.update_yaxes(title_text="cores (all services)", row=1, col=1, rangemode="tozero")
    fig.update_yaxes(title_text="nodes", row=2, col=1, rangemode="tozero")
    fig.update_xaxes(title_text=axis.label, row=2, col=1)
    fig.update_layout(height=560, margin={"l": 70, "r": 200, "t": 20, "b": 50}, hovermode="x unified", template="plotly_white",
                      legend={"x": 1.01, "y": 1.0, "xanchor": "left", "yanchor": "top"})
    return fig


def _png(series: pd.DataFrame, axis: TimeAxis, interval_s: float) -> bytes:
    from themis.reports import static_plots

    fig, (top, bottom) = static_plots.plt.subplots(2, 1, figsize=(static_plots.WIDTH_IN, 6), sharex=True, layout="constrained")
    for k, (policy, part) in enumerate(series.groupby("policy", sort=False)):
        x = axis.positions(part["t_start_s"].to_numpy())
        top.step(x, part["cores"], where="post", color=_PALETTE[k % len(_PALETTE)], label=str(policy))
        bottom.step(x, part["nodes"], where="post", color=_PALETTE[k % len(_PALETTE)], label=str(policy))
    top.set_ylabel("cores (all services)")
    bottom.set_ylabel("nodes")
    bottom.set_xlabel(axis.label)
    top.legend(**static_plots.LEGEND)
    for ax in (top, bottom):
        ax.set_ylim(bottom=0)
    return static_plots.png(fig)




def _rate(value: float | None) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.2%}"


def _policy_table(data: dict[str, Any]) -> str:
    rows = []
    for name, row in data["policies"].items():
        spread = row["service_violation_rate"]
        rows.append([name, _rate(row["violation_rate"]), _rate(spread["median"]), _rate(spread["p90"]), _rate(spread["p99"]),
                     f"{row['core_hours']:,.1f}", f"{row['node_hours']:,.1f}", row["peak_nodes"], f"{row['cost']:,.2f}",
                     f"{row['node_cost']:,.2f}"])
    return html_table(["policy", "violation rate", "median service", "p90 service", "p99 service", "core-hours", "node-hours",
                   "peak nodes", "cost", "node cost"], rows)


def _worst_by_policy(data: dict[str, Any]) -> str:
    rows = [[name, str(w["service"]), _rate(w["violation_rate"]), f"{w['violations']:,}", f"{w['requests']:,}"]
            for name, row in data["policies"].items() for w in row["worst_services"]]
    return html_table(["policy", "service", "violation rate", "violations", "requests"], rows)


def _plan_table(data: dict[str, Any]) -> str:
    t = data["totals"]
    return html_table(["services", "core-hours", "cost", "node-hours", "node cost", "peak nodes", "peak pods", "services at risk"],
                  [[f"{t['services']:,}", f"{t['core_hours']:,.1f}", f"{t['cost']:,.2f}", f"{t['node_hours']:,.1f}",
                    f"{t['node_cost']:,.2f}", t["peak_nodes"], t["peak_pods"], t["services_at_risk"]]])


def _worst_planned(data: dict[str, Any]) -> str:
    rows = [[str(w["service"]), w["est_violation_intervals"], f"{w['core_hours']:,.1f}", w["peak_replicas"],
             "yes" if w["feasible"] else "no"] for w in data["worst_services"]]
    return html_table(["service", "intervals over the SLO estimate", "core-hours", "peak replicas", "SLO reachable"], rows)
