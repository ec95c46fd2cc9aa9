"""The only place that chooses between human output, `--json` and `--out` (pipx `render_result`).

A result is any object with `to_dict()` (the JSON contract) and, for CSV/Parquet,
`to_frame()`. Human output goes through `show(console)`, which commands supply.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import typer
from rich.console import Console


class Result(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


JSON_OPTION = typer.Option(False, "--json", help="Print the result as JSON on stdout (nothing else).")
OUT_OPTION = typer.Option(None, "--out", help="Also write the result to FILE (.json, .csv or .parquet, by suffix).", show_default="none")

PIPE_WIDTH = 120
"""Tables printed into a pipe or a CI log are laid out this wide (rich's default is 80)."""

console = Console(width=None if sys.stdout.isatty() else max(PIPE_WIDTH, int(os.environ.get("COLUMNS") or 0)))
err_console = Console(stderr=True)


def render(
    result: Result,
    *,
    as_json: bool,
    out: Path | None,
    show: Callable[[Console], None],
    exit_code: int = 0,
) -> None:
    """Write `--out`, then print JSON or the human view, then exit with `exit_code`."""
    if out is not None:
        from themis.reports.export import export  # pyarrow: only when a file is written

        export(result, out)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=_json_default))
    else:
        show(console)
        if out is not None:
            err_console.print(f"wrote {out}")
    if exit_code:
        raise typer.Exit(exit_code)


def _json_default(value: Any) -> Any:
    """numpy scalars and paths in results become plain JSON values."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)
