"""Bundled sample models: a registry that lists them without importing torch.

Each entry names the builder (`module:function` inside this package), the per-item input
shape and the parameter count of the published architecture, so `themis models` can list
them instantly; the builders themselves import torch. Weights are random but seeded, so
every build of a model is identical (latency does not depend on the weight values).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

SEED = 0
"""Seed for the random weights of every sample model."""


@dataclass(frozen=True)
class SampleModel:
    """One bundled model: what `themis models` lists and how to build it."""

    name: str
    builder: str
    input_shape: tuple[int, ...]
    input_kind: str
    params: int
    description: str
    kind: str = "batch"
    """`batch`: called on a batch of inputs; `llm`: has the prefill/decode interface of
    `themis.sample_models.tiny_llm`, measured by `themis.profiler.llm`."""

    @property
    def is_llm(self) -> bool:
        return self.kind == "llm"

    def build(self, input_shape: tuple[int, ...] | None = None) -> Any:
        """The `torch.nn.Module` in eval mode with seeded weights (imports torch)."""
        module_name, function_name = self.builder.split(":")
        module = importlib.import_module(f"themis.sample_models.{module_name}")
        return getattr(module, function_name)(input_shape or self.input_shape)

    @property
    def input_shape_text(self) -> str:
        return "x".join(str(n) for n in self.input_shape)


SAMPLE_MODELS: dict[str, SampleModel] = {
    model.name: model
    for model in (
        SampleModel("resnet50", "resnet:resnet50", (3, 224, 224), "image", 25_557_032, "ResNet-50 (He et al. 2016), torchvision layout"),
        SampleModel("resnet18", "resnet:resnet18", (3, 224, 224), "image", 11_689_512, "ResNet-18 (He et al. 2016), torchvision layout"),
        SampleModel("mobilenet_v2", "mobilenet:mobilenet_v2", (3, 224, 224), "image", 3_504_872, "MobileNetV2 (Sandler et al. 2018), torchvision layout"),
        SampleModel("bert_base", "bert:bert_base", (128,), "tokens", 109_482_240, "BERT-base encoder: 12 layers, 768 hidden, 12 heads, pooler; input = sequence length"),
        SampleModel("small_cnn", "small:small_cnn", (3, 32, 32), "image", 14_666, "three conv layers and a linear head, for fast tests"),
        SampleModel("mlp", "small:mlp", (256,), "vector", 399_370, "three linear layers (256-512-512-10), for fast tests"),
        SampleModel(
            "tiny_llm", "tiny_llm:tiny_llm", (128,), "tokens", 4_212_992,
            "LLM: decoder-only transformer with a KV cache (4 layers, d 256, vocab 4096); prefill/decode; input = prompt length",
            kind="llm",
        ),
    )
}
"""Name -> sample model, in the order `themis models` lists them."""
