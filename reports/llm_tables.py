"""Rich tables for LLM plans and comparisons (pure renderers of their JSON forms, so a saved
plan or comparison shows exactly as a fresh one)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from themis.reports.plan_tables import _clock


def _ms(value: float | None) -> str:
    return "inf" if value is None else f"{value:,.1f}"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.2f}x"


def _money(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def describe_replicas(replicas: list[dict[str, int]], labels: list[str]) -> str:
    """`3x cpu x1 + 2x NVIDIA A100-SXM4-80GB`."""
    return " + ".join(f"{r['replicas']}x {labels[r['type']]}" for r in replicas) or "0"


def slo_text(slo: dict[str, float]) -> str:
    return f"p{slo['percentile']:g} TTFT {slo['ttft_ms']:g} ms, TPOT {slo['tpot_ms']:g} ms"


def _units_text(units: dict[str, float]) -> str:
    parts = [f"{seconds / 3600:,.2f} {'core-h' if device == 'cpu' else device + ' GPU-h'}" for device, seconds in units.items()]
    return ", ".join(parts) or "0"


def llm_plan_table(plan: dict[str, Any], max_rows: int = 40) -> Table:
    labels = [t["label"] for t in plan["replica_types"]]
    table = Table(title=f"{plan['policy']} plan (LLM): {slo_text(plan['slo'])}, interval {plan['interval_s']:g} s",
                  caption=f"runs of equal allocations merged; load = peak over {plan['load_window_s']:g} s")
    for column in ("from", "to", "n", "load rps", "peak rps", "replicas", "capacity rps"):
        table.add_column(column, justify="left" if column == "replicas" else "right")
    runs: list[dict[str, Any]] = []
    for step in plan["steps"]:
        key = describe_replicas(step["replicas"], labels)
        if runs and runs[-1]["key"] == key:
            run = runs[-1]
            run.update(t_end_s=step["t_end_s"], n=run["n"] + 1, load=max(run["load"], step["load_rps"]),
                       peak=max(run["peak"], step["peak_rps"]), capacity=min(run["capacity"], step["capacity_rps"]))
        else:
            runs.append({"key": key, "t_start_s": step["t_start_s"], "t_end_s": step["t_end_s"], "n": 1, "load": step["load_rps"],
                         "peak": step["peak_rps"], "capacity": step["capacity_rps"]})
    shown = runs if len(runs) <= max_rows else runs[: max_rows // 2] + [None] + runs[-max_rows // 2 :]
    for run in shown:
        if run is None:
            table.add_row("...", f"{len(runs) - max_rows} more runs", "", "", "", "", "")
            continue
        short = "[red]" if run["capacity"] + 1e-9 < run["load"] else ""
        table.add_row(_clock(run["t_start_s"]), _clock(run["t_end_s"]), str(run["n"]), f"{run['load']:,.2f}", f"{run['peak']:,.2f}",
                      run["key"], f"{short}{run['capacity']:,.2f}")
    return table


def capacity_table(plan: dict[str, Any]) -> Table:
    """Capacity per replica of each type at each token mix, with the percentiles at that rate."""
    labels = [t["label"] for t in plan["replica_types"]]
    blocks = {b["block"]: b for b in plan["mix_blocks"]}
    table = Table(title=f"capacity per replica at {slo_text(plan['slo'])} (simulated, Poisson arrivals)")
    for column in ("replica type", "mix from", "requests", "mean prompt", "mean output", "capacity rps", "TTFT ms", "TPOT ms"):
        table.add_column(column, justify="left" if column == "replica type" else "right")
    for row in plan["capacities"]:
        block = blocks[row["block"]]
        table.add_row(labels[row["type"]], _clock(block["t_start_s"]), f"{block['requests']:,}", f"{block['mean_prompt_tokens']:,.0f}",
                      f"{block['mean_output_tokens']:,.0f}", f"{row['capacity_rps']:.4g}", _ms(row["ttft_ms"]), _ms(row["tpot_ms"]))
    return table


def show_llm_plan(plan: dict[str, Any], console: Console) -> None:
    """The merged table, the capacities, the totals (with cost per million tokens) and the verdict."""
    console.print(llm_plan_table(plan))
    console.print(capacity_table(plan))
    totals = plan["totals"]
    per_mtok = totals["cost_per_mtok"]
    console.print(
        f"totals: {_units_text(totals['unit_seconds_by_device'])}, cost {totals['cost']:,.4f}"
        + (f" ({per_mtok:,.4f} per million tokens of {totals['tokens']:,})" if per_mtok is not None
           else f" (no --price; {totals['tokens']:,} tokens)")
        + f", {totals['scale_actions']} scale actions, {plan['estimated_violation_intervals']} interval(s) whose serving replicas "
        "carry less than the real peak (cold starts applied)"
    )
    verdict = "[green]feasible[/green]" if plan["feasible"] else "[red]SLO out of reach[/red]"
    console.print(f"{verdict}: {plan['reason']}")


def llm_comparison_table(comparison: dict[str, Any]) -> Table:
    table = Table(title=f"{comparison['trace']}: {slo_text(comparison['slo'])}, cold start {comparison['cold_start_s']:g} s")
    q = f"p{comparison['slo']['percentile']:g}"
    for column in ("policy", "viol. rate", "goodput", f"TTFT {q}", f"TPOT {q}", "unit-h", "cost", "cost/Mtok", "actions",
                   "cost/themis"):
        table.add_column(column, justify="left" if column == "policy" else "right")
    for name, row in comparison["policies"].items():
        feasible = "" if row.get("plan_feasible", True) else " (plan: SLO out of reach)"
        table.add_row(
            name + feasible, f"{row['violation_rate']:.2%}", f"{row['goodput_rps'] or 0:,.2f}", _ms(row["ttft_p99_ms"]),
            _ms(row["tpot_p99_ms"]), f"{row['unit_seconds'] / 3600:,.2f}", _money(row["cost"]), _money(row["cost_per_mtok"]),
            str(row["scale_actions"]), _ratio(row["ratio_to_themis"].get("cost")),
        )
    return table


def show_llm_comparison(comparison: dict[str, Any], console: Console) -> None:
    console.print(llm_comparison_table(comparison))
    settings = comparison["settings"]
    console.print(
        f"{settings['requests']:,} requests ({settings['tokens']:,} tokens) per policy; a violation misses TTFT or TPOT; goodput in "
        "requests/s meeting both; TTFT/TPOT in ms; unit-h = core-hours (CPU) or GPU-hours; cost/Mtok per million tokens served."
    )
