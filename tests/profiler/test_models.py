"""Resolving MODEL: sample names, TorchScript and torch.export files, module:factory, input shapes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from themis.profiler.errors import BadOptionError, ModelLoadError, UnknownModelError
from themis.profiler.models import load_model, parse_input_shape, resolve_model
from themis.sample_models import SAMPLE_MODELS


@given(st.lists(st.integers(1, 10_000), min_size=1, max_size=5), st.sampled_from(["x", ",", "X"]))
def test_parse_input_shape_round_trips(dims: list[int], sep: str) -> None:
    assert parse_input_shape(sep.join(map(str, dims))) == tuple(dims)


@pytest.mark.parametrize("text", ["", "3x", "x224", "3x-1", "3x0", "a", "3.5x2", "3 x y"])
def test_parse_input_shape_rejects_garbage(text: str) -> None:
    with pytest.raises(BadOptionError, match="--input-shape"):
        parse_input_shape(text)


def test_sample_model_resolves_with_its_registered_shape_or_an_override() -> None:
    spec = resolve_model("bert_base")
    assert (spec.kind, spec.input_shape_text, spec.input_kind) == ("sample", "128", "tokens")
    assert resolve_model("bert_base", (384,)).input_shape_text == "384"
    assert resolve_model("resnet18").input_shape == SAMPLE_MODELS["resnet18"].input_shape


@pytest.mark.parametrize("reference", ["resnet51", "nosuchpackage_xyz:build", "themis.sample_models:1bad", "missing.pt2"])
def test_unknown_models_are_input_errors(reference: str) -> None:
    with pytest.raises(UnknownModelError):
        resolve_model(reference, (3,))


@pytest.mark.filterwarnings("ignore:`torch.jit")
def test_torchscript_file_needs_an_input_shape_and_loads(tmp_path: Path) -> None:
    path = tmp_path / "cnn.pt"
    torch.jit.script(SAMPLE_MODELS["small_cnn"].build()).save(str(path))
    with pytest.raises(BadOptionError, match="--input-shape"):
        resolve_model(str(path))
    spec = resolve_model(str(path), (3, 32, 32))
    module, make_input = load_model(spec, "float32", "cpu")
    assert (spec.name, spec.kind) == ("cnn", "torchscript")
    assert module(make_input(2)).shape == (2, 10)


def test_export_archive_records_its_input_shape(tmp_path: Path) -> None:
    path = tmp_path / "mlp.pt2"
    model = SAMPLE_MODELS["mlp"].build()
    batch = torch.export.Dim("batch", min=1, max=64)
    torch.export.save(torch.export.export(model, (torch.randn(2, 256),), dynamic_shapes=({0: batch},)), str(path))
    spec = resolve_model(str(path))
    assert (spec.kind, spec.input_shape) == ("export", (256,))
    module, make_input = load_model(spec, "float32", "cpu")
    assert module(make_input(8)).shape == (8, 10)


def test_factory_models(factory_dir: Path) -> None:
    with pytest.raises(BadOptionError, match="--input-shape"):
        resolve_model("hungry_models:hungry")
    spec = resolve_model("hungry_models:hungry", (8,))
    module, make_input = load_model(spec, "float32", "cpu")
    assert module(make_input(2)).shape == (2, 4)
    with pytest.raises(ModelLoadError, match="not a torch.nn.Module"):
        load_model(resolve_model("hungry_models:not_a_module", (8,)), "float32", "cpu")
