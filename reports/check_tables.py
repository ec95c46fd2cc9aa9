"""The one-screen verdict of `themis check`: what failed and by how much."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from themis.planner.gates.verdict import Verdict


def show_verdict(console: Console, verdict: Verdict) -> None:
    """Headline, one row per check, then the supporting tables (regression cells with the
    confidence interval of their change, capacity)."""
    table = Table(title="themis check", title_justify="left", show_lines=False)
    for column in ("gate", "check", "result", "measured vs limit"):
        table.add_column(column, overflow="fold")
    for check in verdict.checks:
        result = "[green]pass[/]" if check.passed else "[bold red]FAIL[/]"
        table.add_row(check.gate, check.name, result, check.explain())
    console.print(table)
    cells = verdict.tables.get("regression_cells")
    if cells is not None and not cells.empty:
        worst = cells.head(5)
        metric = next(c for c in cells.columns if c.endswith("_ms_baseline"))
        with_ci = "ratio_low" in cells.columns
        cell_table = Table(title=f"slowest cells (of {len(cells)} matching)", title_justify="left")
        for column in ("model", "cores", "batch", "baseline ms", "current ms", "change", *(["95% CI"] if with_ci else [])):
            cell_table.add_column(column, justify="right" if column not in ("model",) else "left")
        for _, row in worst.iterrows():
            interval = [f"{row['ratio_low'] - 1:+.1%} to {row['ratio_high'] - 1:+.1%}"] if with_ci else []
            cell_table.add_row(
                str(row["model"]), str(int(row["cores"])), str(int(row["batch_size"])),
                f"{row[metric]:.3g}", f"{row[metric.replace('_baseline', '_current')]:.3g}", f"{row['change']:+.1%}", *interval,
            )
        console.print(cell_table)
    capacity = verdict.tables.get("capacity_at_peak")
    if capacity is not None and not capacity.empty:
        for _, row in capacity.iterrows():
            console.print(
                f"capacity at the peak ({row['peak_rps']:.1f} rps) for {row['model']}: "
                f"{row['config_baseline']} ({row['cores_baseline']} cores) -> {row['config_current']} ({row['cores_current']} cores)"
            )
    if verdict.passed:
        console.print(f"[bold green]PASS[/]: all {len(verdict.checks)} checks passed")
    else:
        console.print(f"[bold red]FAIL[/]: {len(verdict.failures)} of {len(verdict.checks)} checks failed: "
                      + "; ".join(f"{c.name} ({c.explain()})" for c in verdict.failures))
