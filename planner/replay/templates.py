"""What each replayed request looks like: its URL, headers and body.

Two sources:

- `--body-template FILE`: any JSON body, POSTed to `--url` as given. Placeholders:
  `{{input}}` becomes one input item of zeros as a nested JSON list of shape
  [1, *input_shape], `{{batch}}` its batch dimension (1: every request carries one item,
  the server batches), `{{request}}` the request's index in the trace (0, 1, ...).
- `--protocol v2` / `v2-binary`: the v2 inference protocol of Triton and KServe, POSTed to
  `{url}/v2/models/{model}/infer` (see `v2`).

Bodies without `{{request}}` are built once and the same bytes are sent every time, so
the sender's cost per request does not grow with the tensor's size.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from themis.common.files import read_text
from themis.planner.replay import v2
from themis.planner.replay.errors import ReplayInputError

PROTOCOLS = ("v2", "v2-binary")
PLACEHOLDERS = ("input", "batch", "request")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]+)\s*\}\}")


@dataclass(frozen=True)
class RequestTemplate:
    """One replay's requests: same URL and headers, a body that may carry the request index."""

    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    description: str = ""
    per_request: str | None = None
    """Body text with `{{request}}` still in it, when the body differs per request."""

    def body_for(self, request: int) -> bytes:
        if self.per_request is None:
            return self.body
        return _PLACEHOLDER.sub(lambda m: str(request), self.per_request).encode()


def protocol_template(url: str, protocol: str, model: str, input_shape: Sequence[int], dtype: str, input_name: str) -> RequestTemplate:
    """A v2 request of one item of zeros for `model` at base `url`."""
    if protocol not in PROTOCOLS:
        raise ReplayInputError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}", option="--protocol")
    if not model:
        raise ReplayInputError("the v2 protocol needs the model's name on the server (--server-model)", option="--server-model")
    if dtype not in v2.DATATYPES:
        raise ReplayInputError(f"unknown dtype {dtype!r}; use one of {', '.join(v2.DATATYPES)}", option="--dtype")
    shape = [1, *input_shape]
    target = _base(url) + v2.infer_path(model)
    if protocol == "v2":
        return RequestTemplate(target, v2.json_body(input_name, shape, dtype), description=f"v2 JSON, {dtype} {shape}")
    body, headers = v2.binary_body(input_name, shape, dtype)
    return RequestTemplate(target, body, headers, description=f"v2 binary, {dtype} {shape}")


def file_template(url: str, path: Path, input_shape: Sequence[int], dtype: str) -> RequestTemplate:
    """The body template in `path`, with `{{input}}` and `{{batch}}` filled in."""
    text = read_text(path)
    unknown = sorted({m.group(1) for m in _PLACEHOLDER.finditer(text)} - set(PLACEHOLDERS))
    if unknown:
        known = ", ".join("{{" + p + "}}" for p in PLACEHOLDERS)
        raise ReplayInputError(f"unknown placeholder {{{{{unknown[0]}}}}} (known: {known})", file=path)
    zero = "0" if dtype == "int64" else "0.0"
    values = {"input": _nested(zero, [1, *input_shape]), "batch": "1"}
    filled = _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)
    try:
        json.loads(_PLACEHOLDER.sub("0", filled))
    except json.JSONDecodeError as exc:
        raise ReplayInputError(f"not valid JSON once its placeholders are filled in ({exc})", file=path) from None
    per_request = filled if _PLACEHOLDER.search(filled) else None
    return RequestTemplate(_full(url), filled.encode(), description=f"template {path.name}", per_request=per_request)


def _nested(zero: str, shape: Sequence[int]) -> str:
    """JSON text of a tensor of zeros with `shape`, as nested lists."""
    text = "[" + ",".join([zero] * shape[-1]) + "]"
    for n in reversed(shape[:-1]):
        text = "[" + ",".join([text] * n) + "]"
    return text


def _base(url: str) -> str:
    return _full(url).rstrip("/")


def _full(url: str) -> str:
    if not re.match(r"^https?://[^/\s]+", url or ""):
        raise ReplayInputError(f"{url!r} is not an http:// or https:// URL", option="--url")
    return url


def payload_bytes(template: RequestTemplate) -> int:
    """Size of one request's body (the first one), for the summary."""
    return len(template.body_for(0))
