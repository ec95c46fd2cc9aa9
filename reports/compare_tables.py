"""Rich tables for `themis simulate` and `themis compare` (pure renderers of results)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _ms(value: float | None) -> str:
    return "inf" if value is None else f"{value:,.1f}"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.2f}x"


def show_simulation(result: Any, console: Console) -> None:
    """One simulation's summary."""
    s = result.summary()
    measured = f", measured from {result.warmup_s:g} s" if result.warmup_s else ""
    table = Table(title=f"simulation of {result.policy} (SLO {result.slo_ms:g} ms{measured})")
    for column in ("requests", "violations", "violation rate", "dropped", "p50 ms", "p95 ms", "p99 ms", "core-hours", "cost", "scale actions"):
        table.add_column(column, justify="right")
    table.add_row(
        f"{s['requests']:,}", f"{s['violations']:,}", f"{s['violation_rate']:.2%}", f"{s['dropped']:,}",
        _ms(s["p50_ms"]), _ms(s["p95_ms"]), _ms(s["p99_ms"]), f"{s['core_hours']:,.2f}", f"{s['cost']:,.2f}",
        str(s["scale_actions"]),
    )
    console.print(table)


def comparison_table(comparison: Any) -> Table:
    """Per policy the SPEC metrics and its ratio to themis (violations and core-hours)."""
    data = comparison.to_dict()
    table = Table(title=f"{data['trace']}: SLO {data['slo_ms']:g} ms, cold start {data['cold_start_s']:g} s (latency in ms)")
    for column in ("policy", "viol. rate", "viol.", "p50", "p95", "p99", "core-h", "cost",
                   "actions", "viol./themis", "core-h/themis"):
        table.add_column(column, justify="left" if column == "policy" else "right")
    for name, row in data["policies"].items():
        ratios = row["ratio_to_themis"]
        feasible = "" if row.get("plan_feasible", True) else " (plan: SLO out of reach)"
        table.add_row(
            name + feasible, f"{row['violation_rate']:.2%}", f"{row['violations']:,}", _ms(row["p50_ms"]), _ms(row["p95_ms"]),
            _ms(row["p99_ms"]), f"{row['core_hours']:,.2f}", f"{row['cost']:,.2f}", str(row["scale_actions"]),
            _ratio(ratios.get("violations")), _ratio(ratios.get("core_seconds")),
        )
    return table


def show_comparison(comparison: Any, console: Console) -> None:
    console.print(comparison_table(comparison))
    measured = f" (measured from {comparison.warmup_s:g} s)" if comparison.warmup_s else ""
    console.print(
        f"{comparison.settings.get('requests', 0):,} requests per policy{measured}; ratios are policy / themis (n/a: themis had none)."
    )


def comparison_markdown(comparison: Any) -> str:
    """The comparison as a GitHub Markdown table (benchmarks and README)."""
    data = comparison.to_dict()
    lines = [
        "| policy | violation rate | violations | p50 ms | p99 ms | core-hours | scale actions | violations / themis | core-hours / themis |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in data["policies"].items():
        r = row["ratio_to_themis"]
        lines.append(
            f"| {name} | {row['violation_rate']:.2%} | {row['violations']:,} | {_ms(row['p50_ms'])} | {_ms(row['p99_ms'])} | "
            f"{row['core_hours']:,.2f} | {row['scale_actions']} | {_ratio(r.get('violations'))} | {_ratio(r.get('core_seconds'))} |"
        )
    return "\n".join(lines)
