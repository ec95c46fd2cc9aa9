"""Record a benchmark's table in `benchmarks/RESULTS.md`, in its own marked section.

Each benchmark script owns one section (between `<!-- NAME:start -->` and
`<!-- NAME:end -->`), so scripts can be re-run independently without clobbering others.
"""

from __future__ import annotations

import platform
import re
from datetime import datetime, timezone
from pathlib import Path

from themis.common.atomic import write_text_atomic

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = "# Benchmark results\n\nWritten by the scripts in `benchmarks/` (`make bench`); each section is replaced when its script runs.\n"


def record(name: str, title: str, body_markdown: str) -> None:
    """Replace (or append) section `name` of RESULTS.md with `body_markdown`."""
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else HEADER
    stamp = f"_{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, {platform.processor() or platform.machine()}_"
    section = f"<!-- {name}:start -->\n## {title}\n\n{stamp}\n\n{body_markdown.strip()}\n<!-- {name}:end -->"
    pattern = re.compile(rf"<!-- {re.escape(name)}:start -->.*?<!-- {re.escape(name)}:end -->", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    write_text_atomic(RESULTS, text)


def markdown_table(headers: list[str], rows: list[list[object]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
