"""`themis profile MODEL` when MODEL is an LLM: prefill and decode iterations measured for real
by `themis.profiler.llm`, one process per core count, into an LLM profile table
(`themis.kind = llm_profile`), then the iteration-time model fitted per core count."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from themis.cli import output
from themis.cli.options import parse_int_list
from themis.common import SCHEMA_VERSION
from themis.profiler.errors import BadOptionError


@dataclass(frozen=True)
class LlmProfileResult:
    """What was measured and written, and the iteration-time model of each core count."""

    path: Path
    rows: list[dict[str, Any]]
    environment: dict[str, Any]
    fits: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "kind": "llm_profile_run", "out": str(self.path), "cells": len(self.rows),
                "ok_cells": sum(r["status"] == "ok" for r in self.rows), "environment": self.environment, "iteration_models": self.fits}

    def show(self, console: Console) -> None:
        table = Table(title=f"LLM profile: {self.path}")
        for column in ("cores", "phase", "batch", "prompt", "context", "p50 ms", "p99 ms", "status"):
            table.add_column(column, justify="left" if column in ("phase", "status") else "right")
        for r in self.rows:
            table.add_row(str(r["cores"]), r["phase"], str(r["batch_size"]), str(r["prompt_tokens"]), str(r["context_tokens"]),
                          f"{r['p50_ms']:,.2f}", f"{r['p99_ms']:,.2f}", r["status"])
        console.print(table)
        for fit in self.fits:
            coef = ", ".join(f"{name} {value:.4g}" for name, value in fit["coef_ms"].items())
            report = fit["fit_report"] or {}
            loo = report.get("loo_mape", {})
            console.print(f"{fit['model']} on cpu x{fit['cores']}: T = {coef} (ms); leave-one-out error "
                          + ", ".join(f"{k} {v:.0%}" for k, v in loo.items()))
        load = self.environment.get("load_average", [])
        console.print(f"load average before measuring: {', '.join(f'{x:.1f}' for x in load) or 'n/a'}; wrote {self.path}")


def profile_llm_command(
    model: str, *, device: str, cores: str | None, dtype: str, budget_s: float, min_samples: int, warmup: int, out: Path | None,
    overwrite: bool, resume: bool, as_json: bool,
) -> None:
    """Measure `model` (an LLM sample or factory) on this machine's CPU (or one GPU) and write its LLM profile."""
    from themis.planner.llm.iteration import fit_iteration_models
    from themis.profiler import devices
    from themis.profiler.llm import LlmProfileRequest, profile_llm
    from themis.profiler.llm_table import read_llm_profile
    from themis.profiler.measure import Budget
    from themis.profiler.store import new_profile_path

    if resume:
        raise BadOptionError("an LLM profile is measured whole; --resume is for batch profiles", option="--resume")
    chosen = devices.resolve_devices(device)
    if len(chosen) != 1:
        raise BadOptionError("an LLM is profiled on one device at a time: cpu, or one cuda:N", option="--device")
    available = len(devices.available_cpus())
    core_counts = parse_int_list(cores, "--cores") if cores else tuple(devices.default_core_counts(available))
    path = out or new_profile_path(model, chosen[0].kind)
    if path.exists() and not overwrite:
        raise BadOptionError(f"{path} exists; pass --overwrite to measure it again", option="--out")
    request = LlmProfileRequest(model, core_counts if chosen[0].kind == "cpu" else (1,),
                                budget=Budget(budget_s=budget_s, min_samples=min_samples, warmup=warmup), device=chosen[0], dtype=dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    output.err_console.print(f"themis: measuring {model} (prefill and decode iterations) at cores {list(request.core_counts)}")
    frame = profile_llm(request, out=path)
    stored = read_llm_profile(path)
    result = LlmProfileResult(path, frame.to_dict(orient="records"), stored.attrs["environment"],
                              [m.to_dict() for m in fit_iteration_models(stored)])
    output.render(result, as_json=as_json, out=None, show=result.show)
