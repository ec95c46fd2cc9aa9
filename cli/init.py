"""`themis init`: write `themis.toml`, the settings every command in this folder reads."""

from __future__ import annotations

from pathlib import Path

import typer

from themis.cli import output
from themis.cli.settings import write_template


def init(
    directory: Path = typer.Option(Path("."), "--dir", help="Folder to write themis.toml into."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing themis.toml."),
) -> None:
    """Write themis.toml with every shared setting (SLO, node size, prices, cold start ...) and its default.

    Asks nothing: edit the file afterwards. Options given on any command line override it.

    [b]Example[/b]

      themis init && themis plan --trace azure_llm.csv
    """
    path = write_template(directory, overwrite=overwrite)
    output.err_console.print(f"wrote {path}: set [b]slo[/b] (and prices, node size) for this service, then run `themis plan`")
