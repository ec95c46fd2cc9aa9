"""Whole profiles measured for real: grid coverage, consistency, out-of-memory skips, resume."""

from __future__ import annotations

from pathlib import Path

import pytest

from themis.profiler.devices import available_cpus, cpu_device, environment
from themis.profiler.errors import BadOptionError, ModelLoadError, ProfileFileError
from themis.profiler.grid import build_grid
from themis.profiler.measure import Budget
from themis.profiler.models import resolve_model
from themis.profiler.run import ProfileRequest, run_profile
from themis.profiler.table import read_profile, write_profile

TINY_BUDGET = Budget(budget_s=0.05, min_samples=5, warmup=1)
CORES = [1, 2] if len(available_cpus()) >= 2 else [1]


def _request(model: str, out: Path, batch_sizes=(1, 2, 4), cores=CORES, shape=None, **kwargs) -> ProfileRequest:
    return ProfileRequest(resolve_model(model, shape), [cpu_device()], list(cores), list(batch_sizes), "float32", TINY_BUDGET, out, **kwargs)


def test_gpu_cells_use_one_core_each() -> None:
    from themis.profiler.devices import Device

    gpu = Device("cuda", "Tesla T4", "GPU-1")
    cells = build_grid([cpu_device(), gpu], [2, 1], [4, 1])
    assert [(c.device.kind, c.cores, c.batch_size) for c in cells] == [
        ("cpu", 1, 1), ("cpu", 1, 4), ("cpu", 2, 1), ("cpu", 2, 4), ("cuda", 1, 1), ("cuda", 1, 4)]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["small_cnn", "mlp"])
def test_every_requested_cell_is_measured_and_consistent(tmp_path: Path, model: str, check_profile) -> None:
    out = tmp_path / f"{model}.parquet"
    result = run_profile(_request(model, out, batch_sizes=(1, 2, 4, 8)))
    stored = read_profile(out)
    assert sorted(zip(stored.cores, stored.batch_size)) == [(c, b) for c in CORES for b in (1, 2, 4, 8)]
    assert (stored.status == "ok").all() and (stored.samples >= TINY_BUDGET.min_samples).all()
    assert (stored.model == model).all() and (stored.device_kind == "cpu").all() and (stored.device_id == "").all()
    check_profile(stored)
    assert result.measured_cells == len(stored) and result.kept_cells == 0
    assert set(stored.attrs["environment"]) == set(environment([cpu_device()]))


@pytest.mark.slow
def test_resume_measures_only_the_missing_cells(tmp_path: Path) -> None:
    out = tmp_path / "mlp.parquet"
    first = run_profile(_request("mlp", out, batch_sizes=(1, 4), cores=[1]))
    second = run_profile(_request("mlp", out, batch_sizes=(1, 2, 4), cores=[1], resume=True))
    assert (first.measured_cells, second.measured_cells, second.kept_cells) == (2, 1, 2)
    before = first.frame.set_index("batch_size")
    after = second.frame.set_index("batch_size")
    assert after.loc[[1, 4]].equals(before.loc[[1, 4]])  # kept rows are byte-for-byte the old ones
    assert list(after.index) == [1, 2, 4]
    assert read_profile(out).attrs["environment"]["created_at"] == first.environment["created_at"]


@pytest.mark.slow
def test_resume_retries_error_cells(tmp_path: Path) -> None:
    out = tmp_path / "mlp.parquet"
    rows = run_profile(_request("mlp", out, batch_sizes=(1, 2), cores=[1])).frame.to_dict(orient="records")
    rows[1].update(status="error", error="RuntimeError: boom")
    write_profile(out, rows, read_profile(out).attrs["environment"])
    result = run_profile(_request("mlp", out, batch_sizes=(1, 2), cores=[1], resume=True))
    assert result.measured_cells == 1 and (result.frame.status == "ok").all()


@pytest.mark.slow
def test_out_of_memory_skips_larger_batches_on_the_device(tmp_path: Path, factory_dir: Path, check_profile) -> None:
    out = tmp_path / "hungry.parquet"
    frame = run_profile(_request("hungry_models:hungry", out, batch_sizes=(1, 2, 4, 8), shape=(8,))).frame
    status = {(r.cores, r.batch_size): (r.status, r.error) for r in frame.itertuples()}
    for cores in CORES:
        assert status[(cores, 1)][0] == status[(cores, 2)][0] == "ok"
        assert status[(cores, 8)] == ("oom", "skipped: batch 4 already ran out of memory on this device")
    assert status[(1, 4)][0] == "oom" and "alloc" in status[(1, 4)][1]  # the real allocator failure
    if 2 in CORES:
        assert status[(2, 4)][1].startswith("skipped")  # never measured again on more cores
    check_profile(frame)


@pytest.mark.slow
def test_existing_output_is_kept_unless_resume_or_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "mlp.parquet"
    run_profile(_request("mlp", out, batch_sizes=(1,), cores=[1]))
    with pytest.raises(BadOptionError, match="--resume"):
        run_profile(_request("mlp", out, batch_sizes=(1,), cores=[1]))
    assert run_profile(_request("mlp", out, batch_sizes=(2,), cores=[1], overwrite=True)).frame.batch_size.tolist() == [2]


def test_bad_outputs_fail_before_measuring(tmp_path: Path) -> None:
    with pytest.raises(BadOptionError, match=".parquet"):
        run_profile(_request("mlp", tmp_path / "x.csv"))
    with pytest.raises(Exception, match="directory does not exist"):
        run_profile(_request("mlp", tmp_path / "missing" / "x.parquet"))
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 nonsense")
    with pytest.raises(ProfileFileError):
        run_profile(_request("mlp", corrupt, resume=True))


def test_a_factory_that_fails_to_build_is_a_load_error(tmp_path: Path, factory_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match="not a torch.nn.Module"):
        run_profile(_request("hungry_models:not_a_module", tmp_path / "x.parquet", shape=(8,), cores=[1]))


@pytest.mark.slow
def test_resume_remembers_an_out_of_memory_batch(tmp_path: Path, factory_dir: Path) -> None:
    out = tmp_path / "hungry.parquet"
    run_profile(_request("hungry_models:hungry", out, batch_sizes=(1, 4), cores=[1], shape=(8,)))
    result = run_profile(_request("hungry_models:hungry", out, batch_sizes=(1, 4, 8), shape=(8,), resume=True))
    status = {(r.cores, r.batch_size): r.error for r in result.frame.itertuples() if r.status == "oom"}
    assert status[(1, 8)].startswith("skipped") and "alloc" in status[(1, 4)]
    if 2 in CORES:
        assert status[(2, 4)].startswith("skipped") and status[(2, 8)].startswith("skipped")
    assert result.kept_cells == 2
