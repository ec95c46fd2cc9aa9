"""Which model to profile: a bundled sample, a TorchScript file, a `.pt2` export, or a factory.

`resolve_model` checks the reference without importing torch (it runs in the parent);
`load_model` builds the module and its example input inside the measuring worker.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from themis.profiler.errors import BadOptionError, ModelLoadError, UnknownModelError
from themis.sample_models import SAMPLE_MODELS

TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript")
EXPORT_SUFFIX = ".pt2"
DTYPES = ("float32", "float16", "bfloat16", "float64")


@dataclass(frozen=True)
class ModelSpec:
    """Plain data naming a model and its per-item input; sent to the worker as JSON."""

    name: str  # the profile's `model` column
    source: str  # sample name, file path or `module:factory`
    kind: str  # "sample" | "torchscript" | "export" | "factory"
    input_shape: tuple[int, ...]
    input_kind: str = "tensor"  # "tokens" feeds int64 ids; anything else floats

    @property
    def input_shape_text(self) -> str:
        return "x".join(str(n) for n in self.input_shape)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "kind": self.kind, "input_shape": list(self.input_shape), "input_kind": self.input_kind}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        return cls(data["name"], data["source"], data["kind"], tuple(data["input_shape"]), data["input_kind"])


def parse_input_shape(text: str) -> tuple[int, ...]:
    """`3x224x224` (or `3,224,224`) -> (3, 224, 224): the shape of one item, batch excluded."""
    parts = text.replace(",", "x").lower().split("x")
    if not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise BadOptionError(f"{text!r} is not a shape like 3x224x224 (positive integers)", option="--input-shape")
    return tuple(int(p) for p in parts)


def resolve_model(reference: str, input_shape: tuple[int, ...] | None = None) -> ModelSpec:
    """Identify MODEL without building it; raises `UnknownModelError` when it names nothing."""
    if reference in SAMPLE_MODELS:
        sample = SAMPLE_MODELS[reference]
        return ModelSpec(sample.name, sample.name, "sample", input_shape or sample.input_shape, sample.input_kind)
    path = Path(reference)
    if path.suffix in (*TORCHSCRIPT_SUFFIXES, EXPORT_SUFFIX):
        if not path.is_file():
            raise UnknownModelError("no such model file", file=path)
        if path.suffix == EXPORT_SUFFIX:
            return ModelSpec(path.stem, str(path), "export", input_shape or _export_input_shape(path))
        if input_shape is None:
            raise BadOptionError(f"a TorchScript file does not record its input; give --input-shape for {path.name}", option="--input-shape")
        return ModelSpec(path.stem, str(path), "torchscript", input_shape)
    if ":" in reference and "/" not in reference:
        module_name, _, attribute = reference.partition(":")
        if not module_name or not attribute.isidentifier() or _find_module(module_name) is None:
            raise UnknownModelError(f"cannot import {module_name!r} for factory {reference!r}", option="MODEL")
        if input_shape is None:
            raise BadOptionError(f"give --input-shape for the model built by {reference}", option="--input-shape")
        return ModelSpec(attribute, reference, "factory", input_shape)
    known = ", ".join(SAMPLE_MODELS)
    raise UnknownModelError(f"unknown model {reference!r}; use one of {known}, a .pt/.pt2 file or module:factory", option="MODEL")


def _find_module(name: str) -> Any:
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


def _export_input_shape(path: Path) -> tuple[int, ...]:
    """The per-item input shape recorded in a `torch.export` archive (its example input)."""
    import torch

    try:
        args, _ = torch.export.load(str(path)).example_inputs
        return tuple(int(n) for n in args[0].shape[1:])
    except Exception as exc:  # any failure to read the archive is the user's file
        raise ModelLoadError(f"cannot read the torch.export archive ({exc})", file=path) from None


def load_model(spec: ModelSpec, dtype: str, device: str) -> tuple[Any, Callable[[int], Any]]:
    """Build the module in inference mode on `device` and a function batch -> example input."""
    import torch

    torch_dtype = getattr(torch, dtype)
    if spec.kind == "sample":
        module = SAMPLE_MODELS[spec.source].build(spec.input_shape)
    elif spec.kind == "torchscript":
        module = torch.jit.load(spec.source, map_location="cpu")
    elif spec.kind == "export":
        module = torch.export.load(spec.source).module()
    else:
        module_name, _, attribute = spec.source.partition(":")
        module = getattr(importlib.import_module(module_name), attribute)()
        if not isinstance(module, torch.nn.Module):
            raise ModelLoadError(f"{spec.source} returned {type(module).__name__}, not a torch.nn.Module", option="MODEL")
    if hasattr(module, "eval") and spec.kind != "export":
        module = module.eval()
    module = module.to(device=device, dtype=torch_dtype) if spec.kind != "export" else module.to(device)
    generator = torch.Generator().manual_seed(0)

    def make_input(batch_size: int) -> Any:
        shape = (batch_size, *spec.input_shape)
        if spec.input_kind == "tokens":
            return torch.randint(0, 30_000, shape, generator=generator).to(device)
        return torch.randn(shape, generator=generator).to(device=device, dtype=torch_dtype)

    return module, make_input
