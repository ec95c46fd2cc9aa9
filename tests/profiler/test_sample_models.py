"""Sample models: parameter counts of the published architectures, seeded weights, no torch to list them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from themis.sample_models import SAMPLE_MODELS

# Published counts (torchvision's model cards; Hugging Face BertModel for bert-base-uncased),
# typed in here independently of the registry.
PUBLISHED_PARAMS = {"resnet50": 25_557_032, "resnet18": 11_689_512, "mobilenet_v2": 3_504_872, "bert_base": 109_482_240}
FAST = ["small_cnn", "mlp", "mobilenet_v2", "resnet18"]
SLOW = ["resnet50", "bert_base"]


def _count(name: str) -> int:
    return sum(p.numel() for p in SAMPLE_MODELS[name].build().parameters())


@pytest.mark.parametrize("name", FAST)
def test_built_model_has_the_registered_parameter_count(name: str) -> None:
    assert _count(name) == SAMPLE_MODELS[name].params == PUBLISHED_PARAMS.get(name, SAMPLE_MODELS[name].params)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_large_models_match_the_published_count(name: str) -> None:
    assert _count(name) == SAMPLE_MODELS[name].params == PUBLISHED_PARAMS[name]


@pytest.mark.parametrize("name", FAST)
def test_forward_pass_on_the_registered_input_shape(name: str) -> None:
    import torch

    model = SAMPLE_MODELS[name].build()
    with torch.inference_mode():
        out = model(torch.randn(2, *SAMPLE_MODELS[name].input_shape))
    assert out.shape[0] == 2 and torch.isfinite(out).all()


def test_weights_are_seeded_so_builds_are_identical() -> None:
    import torch

    first, second = SAMPLE_MODELS["small_cnn"].build(), SAMPLE_MODELS["small_cnn"].build()
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))


def test_bert_takes_the_sequence_length_as_its_input_shape() -> None:
    import torch

    from themis.sample_models.bert import bert_base

    model = bert_base((16,))
    with torch.inference_mode():
        assert model(torch.randint(0, 30_000, (3, 16))).shape == (3, 768)
    with pytest.raises(ValueError, match="512 positions"):
        bert_base((600,))


def test_listing_the_registry_does_not_import_torch() -> None:
    code = "import sys; from themis.sample_models import SAMPLE_MODELS; print(len(SAMPLE_MODELS), 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["7", "False"]
