"""Iteration-time fit: recovers known coefficients, keeps an attention estimate separate, reports errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from themis.planner.errors import ProfileDataError
from themis.planner.llm.iteration import (
    AttentionTerms,
    cell_features,
    fit_iteration_model,
    load_iteration_models,
)

TINY_PROFILE = Path(__file__).parents[2] / "data" / "profiles" / "tiny_llm_cpu.parquet"


def cells_from(coef: np.ndarray, attention: str = "included") -> pd.DataFrame:
    """Profile rows whose times follow `coef` exactly (what a noiseless measurement would give)."""
    rows = []
    for phase, batch, prompt, context in (
        [("prefill", b, p, 0) for p in (16, 128, 1024) for b in (1, 4)] + [("decode", b, 0, c) for c in (64, 512) for b in (1, 8, 32)]
    ):
        features = cell_features(phase, batch, prompt, context)
        if attention == "excluded":
            features[3:] = 0.0
        rows.append({
            "model": "m", "device_kind": "cpu", "device_name": "cpu0", "device_id": "", "cores": 2, "dtype": "float32",
            "phase": phase, "batch_size": batch, "prompt_tokens": prompt, "context_tokens": context,
            "p50_ms": float(features @ coef), "status": "ok", "provenance": "measured", "attention": attention,
        })
    return pd.DataFrame(rows)


def test_features_of_a_prefill_and_a_decode_step():
    assert cell_features("prefill", 2, 3, 0).tolist() == [1.0, 6.0, 0.0, 0.0, 12.0]  # 2 x (1 + 2 + 3) causal pairs
    assert cell_features("decode", 4, 0, 9).tolist() == [1.0, 0.0, 4.0, 40.0, 0.0]  # each attends 9 cached + itself


def test_fit_recovers_the_coefficients_of_noiseless_cells():
    truth = np.array([3.0, 0.05, 0.4, 0.002, 1e-5])
    model = fit_iteration_model(cells_from(truth))
    np.testing.assert_allclose(model.coef_ms, truth, rtol=1e-6)
    assert model.attention == "fitted" and model.label == "cpu x2"
    assert model.fit_report.loo_mape["all"] < 1e-6 and model.fit_report.heldout_mape < 1e-6
    assert model.predict_ms(100, 3, 600, 5050) == pytest.approx(float(np.array([1, 100, 3, 600, 5050]) @ truth))


def test_rows_without_attention_take_delta_and_epsilon_from_the_footer_estimate():
    truth = np.array([3.0, 0.05, 0.4, 0.0, 0.0])
    frame = cells_from(truth, attention="excluded")
    with pytest.raises(ProfileDataError, match="attention_estimate"):
        fit_iteration_model(frame)
    frame.attrs["llm"] = {"attention_estimate": AttentionTerms(0.002, 1e-5, "test estimate").to_dict()}
    model = fit_iteration_model(frame)
    np.testing.assert_allclose(model.coef_ms, [3.0, 0.05, 0.4, 0.002, 1e-5], rtol=1e-6)
    assert model.attention == "estimate" and model.attention_source == "test estimate"
    measured = model.with_attention(AttentionTerms(0.003, 2e-5, "a measured attention table", basis="measured"))
    assert measured.coef_ms[:3].tolist() == model.coef_ms[:3].tolist() and measured.coef_ms[3:].tolist() == [0.003, 2e-5]
    assert measured.attention == "measured"


def test_a_table_mixing_rows_with_and_without_attention_is_refused():
    frame = pd.concat([cells_from(np.ones(5)), cells_from(np.ones(5), attention="excluded")], ignore_index=True)
    with pytest.raises(ProfileDataError, match="mixes"):
        fit_iteration_model(frame)


def test_the_measured_tiny_llm_profile_fits_per_core_count():
    models = load_iteration_models(TINY_PROFILE)
    assert [m.cores for m in models] == [1, 2]
    for model in models:
        assert model.model == "tiny_llm" and model.provenance == "measured" and model.coef_ms[0] > 0
        report = model.fit_report
        assert report.cells >= 20 and np.isfinite(report.loo_mape["all"]) and np.isfinite(report.heldout_mape)
        cells = report.per_cell
        assert len(cells) == report.cells and cells["heldout"].sum() == report.heldout_cells == 2
        # a longer prompt costs more, and so does a longer context (the fit is not degenerate)
        assert model.predict_cell_ms("prefill", 1, prompt_tokens=2048) > model.predict_cell_ms("prefill", 1, prompt_tokens=64)
        assert model.predict_cell_ms("decode", 8, context_tokens=2048) > model.predict_cell_ms("decode", 8, context_tokens=64)
