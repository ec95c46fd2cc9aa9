"""Whole profiles measured for real: grid coverage, pooled processes, resume, out-of-memory
skips, the sanity re-measure, and CPU quotas through a real cgroup.

The machine these run on is shared, so a cell may come out `contended` or `unstable`
for reasons outside the test: assertions accept any measured status unless the test
makes the outcome certain itself. Contention is judged in `test_column.py` (a worker
sharing its CPU with a spinner); here it is switched off (`NO_CONTENTION_CHECK`) so a
busy machine costs no back-off sleeps and the sanity checks see every cell.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from themis.profiler.devices import available_cpus, cpu_device, environment
from themis.profiler.errors import BadOptionError, ModelLoadError, ProfileFileError
from themis.profiler.grid import build_grid
from themis.profiler.measure import Budget
from themis.profiler.models import resolve_model
from themis.profiler.run import ProfileRequest, run_profile
from themis.profiler.stability import Stability
from themis.profiler.table import MEASURED_STATUSES, RAW_COLUMNS, profile_rows, read_profile, write_profile

TINY_BUDGET = Budget(budget_s=0.05, min_samples=100, warmup=1)
NO_CONTENTION_CHECK = 1.0  # evidence is a share of the CPUs, never above 1
CORES = [1, 2] if len(available_cpus()) >= 2 else [1]
CGROUP_V1_CPU = Path("/sys/fs/cgroup/cpu")


def _request(model: str, out: Path, batch_sizes=(1, 2, 4), cores=CORES, shape=None, **kwargs) -> ProfileRequest:
    kwargs.setdefault("processes", 2)
    kwargs.setdefault("contention_threshold", NO_CONTENTION_CHECK)
    return ProfileRequest(resolve_model(model, shape), [cpu_device()], list(cores), list(batch_sizes), "float32", TINY_BUDGET, out, **kwargs)


def _summary(frame):
    return frame.drop(columns=list(RAW_COLUMNS)).reset_index(drop=True)


def test_gpu_cells_use_one_core_each() -> None:
    from themis.profiler.devices import Device

    gpu = Device("cuda", "Tesla T4", "GPU-1")
    cells = build_grid([cpu_device(), gpu], [2, 1], [4, 1])
    assert [(c.device.kind, c.cores, c.batch_size) for c in cells] == [
        ("cpu", 1, 1), ("cpu", 1, 4), ("cpu", 2, 1), ("cpu", 2, 4), ("cuda", 1, 1), ("cuda", 1, 4)]


@pytest.mark.slow
@pytest.mark.parametrize(("model", "cores"), [("small_cnn", [1]), ("mlp", CORES)])
def test_every_cell_is_measured_by_every_process_and_pooled(tmp_path: Path, model: str, cores: list[int], check_profile) -> None:
    out = tmp_path / f"{model}.parquet"
    result = run_profile(_request(model, out, batch_sizes=(1, 2, 8), cores=cores, processes=3))
    stored = read_profile(out)
    assert sorted(zip(stored.cores, stored.batch_size)) == [(c, b) for c in cores for b in (1, 2, 8)]
    assert stored.status.isin(MEASURED_STATUSES).all() and (stored.samples >= 100).all()
    assert (stored.processes == 3).all() and all(len(p) == 3 and min(p) >= 34 for p in stored.process_samples)
    assert (stored.model == model).all() and (stored.device_kind == "cpu").all() and (stored.device_id == "").all()
    assert (stored.cpu_limit == "pin").all() and (stored.windows >= 9).all() and (stored.process_spread >= 0).all()
    assert stored.runqueue_wait.between(0, 1).all() and stored.cpu_share.between(0, 1.5).all()
    check_profile(stored)
    assert result.measured_cells == len(stored) and result.kept_cells == 0
    assert set(stored.attrs["environment"]) == set(environment([cpu_device()]))
    assert stored.attrs["measurement"]["processes"] == 3 and stored.attrs["measurement"]["cpu_limit"] == "pin"
    assert stored.attrs["schema_version"] == 2


@pytest.mark.slow
def test_resume_keeps_ok_cells_and_measures_the_missing_and_untrusted_ones(tmp_path: Path) -> None:
    out = tmp_path / "mlp.parquet"
    first = run_profile(_request("mlp", out, batch_sizes=(1, 4), cores=[1]))
    rows = profile_rows(read_profile(out))
    rows[0].update(status="ok", error="")  # batch 1: trusted, kept
    rows[1].update(status="contended", error="contended: ...")  # batch 4: measured again
    write_profile(out, rows, first.environment, first.frame.attrs["measurement"])
    second = run_profile(_request("mlp", out, batch_sizes=(1, 2, 4), cores=[1], resume=True))
    assert (first.measured_cells, second.measured_cells, second.kept_cells) == (2, 2, 1)
    before, after = read_profile(out).set_index("batch_size"), second.frame.set_index("batch_size")
    assert list(after.index) == [1, 2, 4]
    assert _summary(after.loc[[1]]).equals(_summary(before.loc[[1]]))
    assert np.array_equal(after.loc[1, "samples_ms"], rows[0]["samples_ms"])  # the kept cell's raw calls too
    assert not np.array_equal(after.loc[4, "samples_ms"], rows[1]["samples_ms"])
    assert read_profile(out).attrs["environment"]["created_at"] == first.environment["created_at"]


@pytest.mark.slow
def test_resume_retries_error_cells(tmp_path: Path) -> None:
    out = tmp_path / "mlp.parquet"
    first = run_profile(_request("mlp", out, batch_sizes=(1, 2), cores=[1]))
    rows = profile_rows(first.frame)
    rows[0].update(status="ok", error="")
    rows[1].update(status="error", error="RuntimeError: boom")
    write_profile(out, rows, first.environment)
    result = run_profile(_request("mlp", out, batch_sizes=(1, 2), cores=[1], resume=True))
    assert result.measured_cells == 1 and result.frame.status.isin(MEASURED_STATUSES).all()


@pytest.mark.slow
def test_out_of_memory_skips_larger_batches_on_the_device(tmp_path: Path, factory_dir: Path, check_profile) -> None:
    out = tmp_path / "hungry.parquet"
    frame = run_profile(_request("hungry_models:hungry", out, batch_sizes=(1, 2, 4, 8), shape=(8,), processes=1)).frame
    status = {(r.cores, r.batch_size): (r.status, r.error) for r in frame.itertuples()}
    for cores in CORES:
        assert status[(cores, 1)][0] in MEASURED_STATUSES and status[(cores, 2)][0] in MEASURED_STATUSES
        assert status[(cores, 8)] == ("oom", "skipped: batch 4 already ran out of memory on this device")
    assert status[(1, 4)][0] == "oom" and "alloc" in status[(1, 4)][1]  # the real allocator failure
    if 2 in CORES:
        assert status[(2, 4)][1].startswith("skipped")  # never measured again on more cores
    check_profile(frame)


@pytest.mark.slow
def test_existing_output_is_kept_unless_resume_or_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "mlp.parquet"
    run_profile(_request("mlp", out, batch_sizes=(1,), cores=[1], processes=1))
    with pytest.raises(BadOptionError, match="--resume"):
        run_profile(_request("mlp", out, batch_sizes=(1,), cores=[1]))
    with pytest.raises(BadOptionError, match="--cpu-limit pin"):
        run_profile(_request("mlp", out, batch_sizes=(1,), cores=[1], resume=True, cpu_limit="quota"))
    assert run_profile(_request("mlp", out, batch_sizes=(2,), cores=[1], overwrite=True, processes=1)).frame.batch_size.tolist() == [2]


@pytest.mark.slow
def test_a_smaller_batch_slower_than_a_larger_one_is_measured_again_and_flagged(tmp_path: Path, factory_dir: Path) -> None:
    out = tmp_path / "odd.parquet"
    result = run_profile(_request("odd_models:odd", out, batch_sizes=(1, 2, 4), cores=[1], shape=(8,)))
    flags = dict(zip(result.frame.batch_size, result.frame.sanity))
    assert flags[2] == "smaller_batch_slower"  # 10 ms against 0.5 ms at batch 4, in every measurement
    assert "smaller_batch_slower" in flags[4]
    assert result.remeasured_cells >= 2 and "still flagged by the sanity checks" in result.summary_line()
    assert read_profile(out).sanity.tolist() == result.frame.sanity.tolist()


@pytest.mark.slow
@pytest.mark.skipif(not (CGROUP_V1_CPU / "cpu.cfs_quota_us").exists(), reason="needs the cgroup v1 cpu controller (this machine and CI have it)")
def test_quota_mode_measures_inside_a_cgroup_and_removes_it(tmp_path: Path, check_profile) -> None:
    out = tmp_path / "mlp.parquet"
    result = run_profile(_request("mlp", out, batch_sizes=(1, 8), cores=[1], cpu_limit="quota", stability=Stability(tolerance=0.2)))
    stored = read_profile(out)
    assert (stored.cpu_limit == "quota").all() and stored.attrs["measurement"]["cpu_limit"] == "quota"
    assert stored.status.isin(MEASURED_STATUSES).all() and (stored.throttled_s >= 0).all()
    check_profile(stored)
    assert result.measured_cells == 2
    assert not list(CGROUP_V1_CPU.glob(f"themis-{os.getpid()}-*"))  # the column's group is gone


def test_summary_line_says_what_to_do_about_untrusted_cells() -> None:
    import pandas as pd

    from themis.profiler.run import ProfileResult

    frame = pd.DataFrame({"status": ["ok", "unstable", "contended", "ok"], "sanity": ["", "", "more_cores_slower", "remeasured"]})
    line = ProfileResult(frame, {}).summary_line()
    assert line.startswith("4 cells: 2 ok, 1 unstable, 1 contended; 1 still flagged")
    assert "--resume" in line and "--allow-unstable" in line
    assert ProfileResult(frame.iloc[[0]], {}).summary_line() == "1 cells: 1 ok"


def test_bad_outputs_fail_before_measuring(tmp_path: Path) -> None:
    with pytest.raises(BadOptionError, match=".parquet"):
        run_profile(_request("mlp", tmp_path / "x.csv"))
    with pytest.raises(Exception, match="directory does not exist"):
        run_profile(_request("mlp", tmp_path / "missing" / "x.parquet"))
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 nonsense")
    with pytest.raises(ProfileFileError):
        run_profile(_request("mlp", corrupt, resume=True))
    with pytest.raises(BadOptionError, match="--processes"):
        run_profile(_request("mlp", tmp_path / "y.parquet", processes=0))


def test_a_factory_that_fails_to_build_is_a_load_error(tmp_path: Path, factory_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match="not a torch.nn.Module"):
        run_profile(_request("hungry_models:not_a_module", tmp_path / "x.parquet", shape=(8,), cores=[1]))


@pytest.mark.slow
def test_resume_remembers_an_out_of_memory_batch(tmp_path: Path, factory_dir: Path) -> None:
    out = tmp_path / "hungry.parquet"
    first = run_profile(_request("hungry_models:hungry", out, batch_sizes=(1, 4), cores=[1], shape=(8,)))
    rows = profile_rows(first.frame)
    rows[0].update(status="ok", error="")  # whatever the shared machine did to batch 1, keep it
    write_profile(out, rows, first.environment)
    result = run_profile(_request("hungry_models:hungry", out, batch_sizes=(1, 4, 8), shape=(8,), resume=True))
    status = {(r.cores, r.batch_size): r.error for r in result.frame.itertuples() if r.status == "oom"}
    assert status[(1, 8)].startswith("skipped") and "alloc" in status[(1, 4)]
    if 2 in CORES:
        assert status[(2, 4)].startswith("skipped") and status[(2, 8)].startswith("skipped")
    assert result.kept_cells == 2
