"""Rich tables for `themis fleet plan` and `themis fleet compare` (pure renderers of results)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from themis.planner.fleet.compare import FleetComparison
from themis.planner.fleet.plan import FleetPlanResult

SHOWN_SERVICES = 10
DAY_S = 86_400.0


def _label(synthetic: bool) -> str:
    return " [SYNTHETIC fleet]" if synthetic else ""


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def nodes_by_period(totals: pd.DataFrame, period_s: float) -> list[tuple[int, int, int, int, float]]:
    """(period, most nodes, most pods, most cores, cost) per period (an hour, a day) of the totals."""
    period = (totals["t_start_s"].to_numpy() // period_s).astype(int)
    rows = []
    for h in np.unique(period):
        part = totals[period == h]
        rows.append((int(h), int(part["nodes"].max()), int(part["pods"].max()), int(part["cores"].max()), float(part["cost"].sum())))
    return rows


def show_fleet_plan(result: FleetPlanResult, console: Console) -> None:
    """The fleet's totals, its nodes hour by hour, and the services most at risk."""
    data = result.to_dict()
    totals = data["totals"]
    summary = Table(title=f"fleet plan: {data['source']}{_label(data['synthetic'])}")
    for column in ("services", "core-hours", "cost", "node-hours", "node cost", "peak nodes", "peak pods", "at risk", "SLO out of reach"):
        summary.add_column(column, justify="right")
    summary.add_row(f"{totals['services']:,}", f"{totals['core_hours']:,.1f}", f"{totals['cost']:,.2f}", f"{totals['node_hours']:,.1f}",
                    f"{totals['node_cost']:,.2f}", f"{totals['peak_nodes']:,}", f"{totals['peak_pods']:,}",
                    f"{totals['services_at_risk']:,}", f"{totals['infeasible_services']:,}")
    console.print(summary)
    node = data["node"]
    span_s = float(result.totals["t_start_s"].max() + result.interval_s) if len(result.totals) else 0.0
    unit, period_s = ("hour", 3600.0) if span_s <= 2 * DAY_S else ("day", DAY_S)
    hours = Table(title=f"nodes per {unit} ({node['cores']}-core, {node['memory_mb']:,.0f} MB nodes, first-fit decreasing)")
    for column in (unit, "nodes (max)", "pods (max)", "cores (max)", "cost"):
        hours.add_column(column, justify="right")
    for hour, nodes, pods, cores, cost in nodes_by_period(result.totals, period_s):
        hours.add_row(str(hour), f"{nodes:,}", f"{pods:,}", f"{cores:,}", f"{cost:,.2f}")
    console.print(hours)
    worst = Table(title="services most at risk (intervals over the SLO estimate)")
    for column in ("service", "intervals at risk", "core-hours", "peak replicas", "SLO reachable"):
        worst.add_column(column, justify="left" if column == "service" else "right")
    for row in data["worst_services"][:SHOWN_SERVICES]:
        worst.add_row(str(row["service"])[:40], f"{row['est_violation_intervals']:,}", f"{row['core_hours']:,.1f}",
                      f"{row['peak_replicas']:,}", "yes" if row["feasible"] else "no")
    console.print(worst)
    shards = data["shards"]
    console.print(f"{shards['total']} shard(s): {shards['planned']} planned now, {shards['kept']} kept; tables in {result.out_dir}")


def show_fleet_comparison(result: FleetComparison, console: Console) -> None:
    """Per policy: the fleet's core-hours, node-hours, cost and per-service violation rates."""
    data = result.to_dict()
    table = Table(title=f"fleet comparison: {data['source']}{_label(data['synthetic'])}")
    for column in ("policy", "viol. rate", "median svc", "p90 svc", "p99 svc", "core-h", "node-h", "peak nodes", "cost", "worst service"):
        table.add_column(column, justify="left" if column in ("policy", "worst service") else "right")
    for name, row in data["policies"].items():
        spread = row["service_violation_rate"]
        worst = row["worst_services"][0] if row["worst_services"] else None
        worst_text = f"{str(worst['service'])[:16]} {_rate(worst['violation_rate'])}" if worst else ""
        table.add_row(name, _rate(row["violation_rate"]), _rate(spread["median"]), _rate(spread["p90"]), _rate(spread["p99"]),
                      f"{row['core_hours']:,.1f}", f"{row['node_hours']:,.1f}", f"{row['peak_nodes']:,}",
                      f"{row['cost'] + row['node_cost']:,.2f}", worst_text)
    console.print(table)
    console.print("svc: the distribution of per-service violation rates; cost includes node cost; tables in "
                  f"{result.out_dir}")
