"""The v2 inference protocol of Triton and KServe, as far as a replay needs it.

A request is `POST /v2/models/{model}/infer` with a JSON body naming its `inputs`
tensors (name, shape, datatype, data). Triton's binary tensor extension puts the data
after the JSON instead (`parameters.binary_data_size`, header
`Inference-Header-Content-Length`), which keeps large image tensors cheap to send and to
read; the reference server uses it for its own replay and accepts both forms.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

HEADER_LENGTH = "Inference-Header-Content-Length"
DATATYPES = {"float32": ("FP32", 4), "float16": ("FP16", 2), "bfloat16": ("BF16", 2), "float64": ("FP64", 8), "int64": ("INT64", 8)}
"""torch dtype name -> (v2 datatype, bytes per element)."""


def infer_path(model: str) -> str:
    return f"/v2/models/{model}/infer"


def json_body(input_name: str, shape: Sequence[int], dtype: str) -> bytes:
    """A v2 request of one tensor of zeros with its data inline (JSON)."""
    datatype, _ = DATATYPES[dtype]
    zero = "0" if datatype == "INT64" else "0.0"
    header = {"inputs": [{"name": input_name, "shape": list(shape), "datatype": datatype, "data": ["@DATA@"]}]}
    text = json.dumps(header, separators=(",", ":"))
    return text.replace('"@DATA@"', ",".join([zero] * math.prod(shape))).encode()


def binary_body(input_name: str, shape: Sequence[int], dtype: str) -> tuple[bytes, dict[str, str]]:
    """A v2 request of one tensor of zeros as binary data after the JSON header, and its HTTP headers."""
    datatype, size = DATATYPES[dtype]
    nbytes = math.prod(shape) * size
    header = {"inputs": [{"name": input_name, "shape": list(shape), "datatype": datatype, "parameters": {"binary_data_size": nbytes}}]}
    head = json.dumps(header, separators=(",", ":")).encode()
    return head + bytes(nbytes), {HEADER_LENGTH: str(len(head)), "Content-Type": "application/octet-stream"}


def request_shape(body: bytes, headers: Mapping[str, str]) -> list[int]:
    """The shape of the first input tensor of a v2 request (JSON or binary form).

    Raises `ValueError` with the reason when the body is not a v2 inference request.
    """
    length = headers.get(HEADER_LENGTH)
    if length is not None:
        if not length.isdigit() or int(length) > len(body):
            raise ValueError(f"{HEADER_LENGTH} {length!r} does not fit the body of {len(body)} bytes")
        header, binary_bytes = _json(body[: int(length)]), len(body) - int(length)
    else:
        header, binary_bytes = _json(body), 0
    inputs = header.get("inputs") if isinstance(header, dict) else None
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, dict) for i in inputs):
        raise ValueError("no 'inputs' list of tensors")
    shape = inputs[0].get("shape")
    if not isinstance(shape, list) or not shape or not all(isinstance(n, int) and n > 0 for n in shape):
        raise ValueError("inputs[0].shape must be a list of positive integers")
    declared = sum(_binary_size(i) for i in inputs)
    if declared != binary_bytes:
        raise ValueError(f"binary_data_size says {declared} bytes, the body carries {binary_bytes}")
    return shape


def _binary_size(tensor: dict[str, Any]) -> int:
    parameters = tensor.get("parameters") or {}
    size = parameters.get("binary_data_size", 0) if isinstance(parameters, dict) else None
    if not isinstance(size, int) or size < 0:
        raise ValueError(f"binary_data_size must be a whole number of bytes, not {size!r}")
    return size


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from None


def response_body(model: str, classes: Sequence[int]) -> dict[str, Any]:
    """The v2 answer of one request: the top-1 class of each item."""
    return {
        "model_name": model,
        "outputs": [{"name": "class", "shape": [len(classes), 1], "datatype": "INT64", "data": list(classes)}],
    }
