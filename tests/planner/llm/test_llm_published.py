"""Published GPU profiles: the vidur conversion, the attention estimate, the profile they make."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from themis.planner.errors import ProfileDataError
from themis.planner.llm.iteration import fit_iteration_model, load_iteration_models
from themis.planner.llm.published import (
    GPUS,
    MODELS,
    attention_estimate,
    bundled_table_path,
    published_profile,
    vidur_iteration_ms,
    write_published_profile,
)
from themis.profiler.llm_table import read_llm_profile

EXCERPT = Path(__file__).parents[2] / "data" / "llm" / "vidur_h100_CodeLlama-34b-Instruct-hf_mlp_excerpt.csv"
PROFILES = Path(__file__).parents[2] / "data" / "profiles"


def test_conversion_of_the_vidur_excerpt_gives_the_bundled_rows():
    converted = vidur_iteration_ms(pd.read_csv(EXCERPT), MODELS["CodeLlama-34b-Instruct-hf"])
    assert converted["num_tokens"].tolist() == [1, 8, 256, 2048, 4096]  # TP 2 rows dropped, duplicates merged
    bundled = pd.read_csv(bundled_table_path())
    bundled = bundled[(bundled["model"] == "CodeLlama-34b-Instruct-hf") & (bundled["gpu"] == "h100")].set_index("num_tokens")
    np.testing.assert_allclose(converted["p50_ms"], bundled.loc[converted["num_tokens"], "p50_ms"], rtol=1e-5)
    # one token by hand from the excerpt's first TP-1 row: emb + 48 x the nine per-layer operator medians
    raw = pd.read_csv(EXCERPT)
    row = raw[(raw["num_tokens"] == 1) & (raw["num_tensor_parallel_workers"] == 1)].iloc[0]
    ops = [
        "input_layernorm", "attn_pre_proj", "attn_rope", "attn_post_proj", "post_attention_layernorm",
        "mlp_up_proj", "mlp_act", "mlp_down_proj", "add",
    ]
    by_hand = row["time_stats.emb.median"] + 48 * sum(row[f"time_stats.{op}.median"] for op in ops)
    assert converted["p50_ms"].iloc[0] == pytest.approx(by_hand)


def test_model_shapes_give_the_published_parameter_counts():
    # Hugging Face model cards / safetensors totals, typed in independently of the shapes
    assert MODELS["Llama-2-7b-hf"].params == 6_738_415_616
    assert MODELS["CodeLlama-34b-Instruct-hf"].params == 33_743_970_304
    assert MODELS["Llama-2-7b-hf"].kv_bytes_per_token == 524_288  # 2 x 32 x 32 x 128 x 2 B
    assert MODELS["CodeLlama-34b-Instruct-hf"].kv_bytes_per_token == 196_608  # GQA: 8 KV heads of 64


def test_attention_estimate_from_bandwidth_and_peak():
    terms = attention_estimate(MODELS["Llama-2-7b-hf"], GPUS["a100"])
    assert terms.decode_context_token_ms == pytest.approx(524_288 / 2.039e12 * 1e3)  # ~0.26 us per cached token
    assert terms.prefill_attention_pair_ms == pytest.approx(4 * 32 * 4096 / 312e12 * 1e3)  # ~1.7 ns per pair
    assert terms.basis == "estimate" and "2,039 GB/s" in terms.source and "312.0 TFLOP/s" in terms.source


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("gpu", sorted(GPUS))
def test_published_profile_is_labelled_and_fits(model, gpu, tmp_path):
    path = write_published_profile(model, gpu, tmp_path / "p.parquet")
    frame = read_llm_profile(path)
    assert set(frame["provenance"]) == {"published"} and set(frame["attention"]) == {"excluded"}
    assert set(frame["phase"]) == {"prefill", "decode"} and frame.loc[frame["phase"] == "decode", "batch_size"].max() == 256
    footer = frame.attrs["llm"]
    assert "vidur" in footer["source"] and footer["attention_estimate"]["basis"] == "estimate"
    assert footer["kv_capacity_tokens"] > 10_000
    (fitted,) = load_iteration_models(path)
    assert fitted.provenance == "published" and fitted.attention == "estimate" and fitted.device_kind == "cuda"
    expected = attention_estimate(MODELS[model], GPUS[gpu])
    assert fitted.coef_ms[3] == pytest.approx(expected.decode_context_token_ms)
    # the linear form follows vidur's curve within ~10% on average, held-out largest cells included
    assert fitted.fit_report.loo_mape["all"] < 0.10 and fitted.fit_report.heldout_mape < 0.15
    assert fitted.coef_ms.tolist() == pytest.approx(fit_iteration_model(published_profile(model, gpu)).coef_ms.tolist())


def test_h100_is_faster_than_a100_and_34b_slower_than_7b():
    def decode_ms(model, gpu):
        return fit_iteration_model(published_profile(model, gpu)).predict_cell_ms("decode", 32, context_tokens=2048)

    assert decode_ms("Llama-2-7b-hf", "h100") < decode_ms("Llama-2-7b-hf", "a100") < decode_ms("CodeLlama-34b-Instruct-hf", "a100")


def test_unknown_published_profile_is_an_input_error():
    with pytest.raises(ProfileDataError, match="no published profile"):
        published_profile("Llama-3-70b", "a100")


def test_a_llama_2_7b_sized_model_measured_on_a_gpu_is_within_2x_of_the_published_model_when_compute_bound():
    # measured on an H200 by benchmarks/gpu_llm_check.py (eager PyTorch, random weights); see tests/data/profiles/README.md
    measured = read_llm_profile(PROFILES / "llama2_7b_shape_h200.parquet")
    assert set(measured["device_kind"]) == {"cuda"} and set(measured["provenance"]) == {"measured"}
    published = fit_iteration_model(published_profile("Llama-2-7b-hf", "h100"))
    prefill = measured[(measured["phase"] == "prefill") & (measured["batch_size"] * measured["prompt_tokens"] >= 1024)]
    predicted = [published.predict_cell_ms("prefill", b, p) for b, p in zip(prefill["batch_size"], prefill["prompt_tokens"])]
    ratio = prefill["p50_ms"].to_numpy() / np.array(predicted)
    assert len(ratio) >= 6 and np.all((ratio > 1.0) & (ratio < 2.0))  # the estimate is a lower bound, and not a loose one
    (gpu_model,) = load_iteration_models(PROFILES / "tiny_llm_h200.parquet")
    assert gpu_model.label == "NVIDIA H200" and gpu_model.device_kind == "cuda"
