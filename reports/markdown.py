"""A check verdict as Markdown, for CI job summaries (GitHub's $GITHUB_STEP_SUMMARY, GitLab MRs)."""

from __future__ import annotations

from pathlib import Path

from themis.common.atomic import write_text_atomic
from themis.planner.gates.verdict import Verdict


def verdict_markdown(verdict: Verdict) -> str:
    """Headline, then one table row per check, then any supporting tables."""
    head = "passed" if verdict.passed else f"FAILED ({len(verdict.failures)} of {len(verdict.checks)} checks)"
    lines = [f"## themis check: {head}", ""]
    lines += [f"- {key}: `{value}`" for key, value in verdict.context.items() if value is not None]
    lines += ["", "| gate | check | result | detail |", "|---|---|---|---|"]
    for c in verdict.checks:
        lines.append(f"| {c.gate} | {c.name} | {'pass' if c.passed else '**FAIL**'} | {c.explain()} |")
    for name, frame in verdict.tables.items():
        if frame.empty:
            continue
        lines += ["", f"### {name.replace('_', ' ')}", "", frame.to_markdown(index=False, floatfmt=".4g")]
    return "\n".join(lines) + "\n"


def write_markdown(verdict: Verdict, path: str | Path) -> Path:
    """Append-safe for CI: writes the summary atomically (a fresh file each run)."""
    return write_text_atomic(path, verdict_markdown(verdict))
