"""Latency models fitted to the golden profiles measured on this machine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.plan_support import PROFILES, golden_model

from themis.planner.errors import ProfileDataError
from themis.planner.model.fit_report import FitReport, FitReports, fit_report
from themis.planner.model.latency import (
    LatencyModel,
    amdahl_ms,
    fit_amdahl,
    latency_models_from_frames,
    load_latency_candidates,
    loo_errors,
)
from themis.profiler.table import read_profile

MODELS = ["small_cnn", "mlp", "resnet18"]


@pytest.mark.parametrize("name", MODELS)
def test_measured_cells_are_used_as_measured(name: str) -> None:
    frame = read_profile(PROFILES / f"{name}_cpu.parquet")
    model = golden_model(name)
    for row in frame[frame["status"] == "ok"].itertuples():
        assert model.predict_ms(row.batch_size, row.cores) == row.p50_ms
        assert model.percentile_ms(row.batch_size, row.cores, 99) == pytest.approx(row.p99_ms)
        assert model.percentile_ms(row.batch_size, row.cores, 50) == pytest.approx(row.p50_ms)


@pytest.mark.parametrize("name", MODELS)
def test_unmeasured_cells_come_from_the_better_backtested_method(name: str) -> None:
    model = golden_model(name)
    errors = loo_errors(model.cells_)
    assert model.method_ == min(errors, key=lambda m: np.mean(errors[m]))
    table = model.service_table_ms(32, [1, 2, 4, 8, 16])
    assert table.shape == (33, 5) and np.isnan(table[0]).all()
    assert np.all(np.isfinite(table[1:])) and np.all(table[1:] > 0)
    assert np.all(model.coef_ >= 0)  # NNLS: no negative time components


def test_a_cell_missing_from_the_table_is_predicted_not_copied() -> None:
    """Drop real cells from a golden profile: they are predicted from the rest (positive,
    finite), by the method the backtest chose, not copied from a neighbour."""
    frame = read_profile(PROFILES / "resnet18_cpu.parquet")
    dropped = frame[~((frame["batch_size"] == 8) & (frame["cores"] == 2))]
    model = LatencyModel("resnet18").fit(dropped)
    assert not model.is_measured(8, 2)
    predicted = model.predict_ms(8, 2)
    assert predicted > 0 and predicted not in model.cells_.values()
    if model.method_ == "amdahl":
        assert predicted == pytest.approx(float(amdahl_ms(model.coef_, 8, 2)))


@given(
    coef=st.tuples(st.floats(0, 20), st.floats(0, 20), st.floats(0, 5), st.floats(0.1, 10)),
)
@settings(max_examples=50, deadline=None)
def test_nnls_recovers_an_exact_amdahl_table(coef: tuple[float, float, float, float]) -> None:
    b, c = np.meshgrid([1, 2, 4, 8, 16, 32], [1, 2, 4, 8])
    b, c = b.ravel().astype(float), c.ravel().astype(float)
    latency = amdahl_ms(np.array(coef), b, c)
    fitted = fit_amdahl(b, c, latency)
    assert np.allclose(amdahl_ms(fitted, b, c), latency, rtol=1e-6, atol=1e-9)


def test_fit_report_backtests_and_holds_out_the_largest_core_count() -> None:
    frame = read_profile(PROFILES / "small_cnn_cpu.parquet")
    (report,) = fit_report(frame).reports  # one model on one device
    assert isinstance(report, FitReport)
    data = report.to_dict()
    assert data["method"] in ("amdahl", "interpolate") and data["cells"] == 12
    assert data["heldout_cores"] == 2 and set(data["heldout_cores_mape"]) == {"amdahl", "interpolate"}
    assert data["loo_mape"][data["method"]] == min(data["loo_mape"].values())
    frame_out = report.to_frame()
    assert len(frame_out) == 12 and {"measured_ms", "loo_amdahl_err", "loo_interpolate_err"} <= set(frame_out.columns)


def test_several_files_merge_into_one_candidate_set() -> None:
    candidates = load_latency_candidates([PROFILES / "small_cnn_cpu.parquet", PROFILES / "mlp_cpu.parquet"])
    assert set(candidates) == {"small_cnn", "mlp"}
    frames = [read_profile(PROFILES / f"{n}_cpu.parquet") for n in MODELS]
    reports = fit_report(pd.concat(frames, ignore_index=True))
    assert isinstance(reports, FitReports) and len(reports.reports) == 3
    assert len(reports.to_frame()) == sum(len(f[f["status"] == "ok"]) for f in frames)


def test_a_gpu_row_is_its_own_device() -> None:
    """FAKE GPU: no GPU exists here, so a copy of the CPU cells relabelled as a GPU stands
    in for one, only to check that devices stay apart."""
    cpu = read_profile(PROFILES / "mlp_cpu.parquet")
    fake_gpu = cpu[cpu["cores"] == 1].assign(device_kind="cuda", device_name="FAKE-GPU-A100", p50_ms=lambda f: f["p50_ms"] / 10)
    models = latency_models_from_frames([cpu, fake_gpu])["mlp"]
    assert [m.device for m in models] == ["cpu", "FAKE-GPU-A100"]
    assert models[1].predict_ms(8, 1) == pytest.approx(models[0].predict_ms(8, 1) / 10)


def test_unknown_model_is_a_profile_error() -> None:
    frame = read_profile(PROFILES / "mlp_cpu.parquet")
    with pytest.raises(ProfileDataError, match="no ok cells"):
        LatencyModel("resnet50").fit(frame)
    with pytest.raises(ProfileDataError):
        fit_report(frame, model="resnet50")
