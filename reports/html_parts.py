"""The pieces every themis HTML page is built of (escaped), shared by the plan, fleet and
replay reports so that their pages look and escape alike."""

from __future__ import annotations

import html
from typing import Any


def html_section(heading: str, content: str) -> str:
    """A titled section of a report page; `content` is HTML already."""
    return f"<section><h2>{html.escape(heading)}</h2>{content}</section>"


def html_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A plain table, every cell escaped."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"
