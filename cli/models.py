"""`themis models`: the bundled sample models, their input shapes and parameter counts.

Listed from the registry alone, so it answers without importing torch.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from themis.cli import output
from themis.common import SCHEMA_VERSION
from themis.sample_models import SAMPLE_MODELS


class ModelList:
    """The sample models as a result (`to_dict` is the `--json` contract)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "models": [
                {"name": m.name, "input_shape": m.input_shape_text, "input_kind": m.input_kind, "params": m.params, "description": m.description}
                for m in SAMPLE_MODELS.values()
            ],
        }

    def show(self, console: Console) -> None:
        table = Table(header_style="bold")
        for name, justify in (("model", "left"), ("input", "left"), ("params", "right"), ("description", "left")):
            table.add_column(name, justify=justify)
        for m in SAMPLE_MODELS.values():
            table.add_row(m.name, f"{m.input_shape_text} ({m.input_kind})", f"{m.params:,}", m.description)
        console.print(table)


def models(as_json: bool = output.JSON_OPTION) -> None:
    """List the bundled sample models (input shape per item, parameter count).

    [b]Example[/b]: themis models --json
    """
    result = ModelList()
    output.render(result, as_json=as_json, out=None, show=result.show)
