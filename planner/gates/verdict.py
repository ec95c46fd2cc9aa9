"""The CI gate's verdict: a list of named checks, each passed or failed by a measured amount.

A failed check is a result, not an exception (STYLE): the CLI turns `Verdict.exit_code`
into exit 1, and reports render the same object as a terminal table, JUnit XML or Markdown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from themis.common import SCHEMA_VERSION


@dataclass(frozen=True)
class GateCheck:
    """One comparison of a measured value against its limit (`measured <= limit` passes)."""

    gate: str
    """`capacity` or `regression`."""
    name: str
    measured: float | None
    limit: float | None
    unit: str
    detail: str = ""
    passed_override: bool | None = None
    """Set for checks that are not a plain `measured <= limit` (e.g. SLO reachable)."""

    @property
    def passed(self) -> bool:
        if self.passed_override is not None:
            return self.passed_override
        if self.limit is None or self.measured is None:
            return True
        return self.measured <= self.limit + 1e-12

    def explain(self) -> str:
        """One line saying what was measured against what, and by how much it failed."""
        if self.measured is None:
            return self.detail
        if self.limit is None:
            text = f"{_fmt(self.measured)}{self.unit} (no limit)"
        else:
            text = f"{_fmt(self.measured)}{self.unit} vs limit {_fmt(self.limit)}{self.unit}"
            if not self.passed:
                over = self.measured - self.limit
                relative = f" ({over / self.limit:+.0%})" if self.limit and self.unit != "%" else ""
                text += f": over by {_fmt(over)}{self.unit}{relative}"
        return f"{text}; {self.detail}" if self.detail else text


@dataclass
class Verdict:
    """All checks of one `themis check` run plus the context needed to read them."""

    checks: list[GateCheck]
    context: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    """Supporting tables (e.g. per-cell regression), rendered but not judged."""

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[GateCheck]:
        return [c for c in self.checks if not c.passed]

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "check",
            "passed": self.passed,
            "context": self.context,
            "checks": [
                {
                    "gate": c.gate,
                    "name": c.name,
                    "passed": c.passed,
                    "measured": c.measured,
                    "limit": c.limit,
                    "unit": c.unit,
                    "explanation": c.explain(),
                }
                for c in self.checks
            ],
            **{name: frame.to_dict(orient="records") for name, frame in self.tables.items()},
        }

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {"gate": c.gate, "name": c.name, "passed": c.passed, "measured": c.measured, "limit": c.limit, "unit": c.unit}
                for c in self.checks
            ]
        )


def _fmt(value: float) -> str:
    return f"{value:.4g}"
