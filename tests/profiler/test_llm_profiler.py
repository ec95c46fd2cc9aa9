"""tiny_llm and the LLM profiler: the serving interface, real measurements, the LLM profile table."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pyarrow.parquet as pq
import pytest

from themis.profiler.errors import BadOptionError, ModelLoadError, ProfileFileError
from themis.profiler.llm import (
    LlmCellRecord,
    LlmGrid,
    LlmProfileRequest,
    check_interface,
    llm_model_spec,
    measure_llm_cell,
    profile_llm,
)
from themis.profiler.llm_table import COLUMNS, read_llm_profile, write_llm_profile
from themis.profiler.measure import Budget
from themis.sample_models import SAMPLE_MODELS

QUICK = Budget(budget_s=0.02, min_samples=3, warmup=1)


@pytest.fixture(scope="module")
def tiny():
    return SAMPLE_MODELS["tiny_llm"].build()


def test_tiny_llm_is_registered_as_an_llm_with_its_parameter_count(tiny):
    entry = SAMPLE_MODELS["tiny_llm"]
    assert entry.is_llm and not SAMPLE_MODELS["mlp"].is_llm
    assert sum(p.numel() for p in tiny.parameters()) == entry.params
    check_interface(tiny)


def test_decoding_from_the_cache_matches_a_longer_prefill_and_can_be_repeated(tiny):
    import torch

    generator = torch.Generator().manual_seed(3)
    prompt = torch.randint(0, tiny.vocab_size, (2, 12), generator=generator)
    nxt = torch.randint(0, tiny.vocab_size, (2,), generator=generator)
    with torch.inference_mode():
        _, cache = tiny.prefill(prompt, 16)
        logits, longer = tiny.decode(nxt, cache)
        again, _ = tiny.decode(nxt, cache)  # the profiler times decode steps this way
        full = tiny.prefill(torch.cat([prompt, nxt[:, None]], dim=1), 13)[0]
    assert longer.length == 13 and cache.length == 12
    assert torch.equal(logits, again)
    assert torch.allclose(logits, full, atol=1e-4)


def test_measure_cells_in_process(tiny):
    base = {"model": "tiny_llm", "device_kind": "cpu", "device_name": "cpu", "device_id": "", "cores": 1, "dtype": "float32"}
    prefill = measure_llm_cell(LlmCellRecord(**base, phase="prefill", batch_size=2, prompt_tokens=32, context_tokens=0), tiny, QUICK)
    decode = measure_llm_cell(LlmCellRecord(**base, phase="decode", batch_size=4, prompt_tokens=0, context_tokens=64), tiny, QUICK)
    for record in (prefill, decode):
        assert record.status == "ok" and record.samples >= 3 and 0 < record.p50_ms <= record.p99_ms
        assert record.provenance == "measured" and record.attention == "included"


def test_a_failing_cell_is_recorded_not_raised(tiny):
    base = {"model": "tiny_llm", "device_kind": "cpu", "device_name": "cpu", "device_id": "", "cores": 1, "dtype": "float32"}
    broken = measure_llm_cell(LlmCellRecord(**base, phase="prefill", batch_size=1, prompt_tokens=8, context_tokens=0), object(), QUICK)
    assert broken.status == "error" and "AttributeError" in broken.error


@pytest.mark.slow
def test_profile_llm_measures_in_a_confined_process_and_writes_the_table(tmp_path):
    grid = LlmGrid(prompt_tokens=(8, 32), prefill_batch_sizes=(1,), context_tokens=(16,), decode_batch_sizes=(1, 4))
    out = tmp_path / "tiny.parquet"
    seen = []
    frame = profile_llm(LlmProfileRequest("tiny_llm", (1,), grid, QUICK), out=out, on_row=seen.append)
    assert len(frame) == len(seen) == 4 and set(frame["status"]) == {"ok"}
    stored = read_llm_profile(out)
    assert stored[list(COLUMNS)].shape == (4, len(COLUMNS))
    assert set(stored["phase"]) == {"prefill", "decode"} and set(stored["cores"]) == {1}
    env = stored.attrs["environment"]
    assert env["torch_version"] and len(env["load_average"]) == 3 and len(env["load_average_after"]) == 3
    assert pq.read_schema(out).metadata[b"themis.kind"] == b"llm_profile"


def test_grid_skips_cells_too_big_to_set_up():
    grid = LlmGrid(
        prompt_tokens=(1024,), prefill_batch_sizes=(1, 16), context_tokens=(1024,), decode_batch_sizes=(1, 16), max_cell_tokens=8192
    )
    cells = grid.cells()
    assert [(c.phase, c.batch_size) for c in cells] == [("prefill", 1), ("decode", 1)]
    with pytest.raises(BadOptionError):
        LlmGrid(prompt_tokens=(0,))


def test_only_llms_are_accepted():
    with pytest.raises(BadOptionError, match="not an LLM"):
        llm_model_spec("small_cnn")
    with pytest.raises(BadOptionError):
        llm_model_spec("model.pt")
    with pytest.raises(ModelLoadError, match="prefill"):
        check_interface(SAMPLE_MODELS["mlp"].build())
    with pytest.raises(BadOptionError, match="core counts"):
        profile_llm(LlmProfileRequest("tiny_llm", (64,)))


def test_llm_table_rejects_foreign_and_damaged_files(tmp_path, golden_profile):
    with pytest.raises(ProfileFileError, match="not a themis LLM profile"):
        read_llm_profile(golden_profile)  # a batch profile
    with pytest.raises(ProfileFileError, match="no such"):
        read_llm_profile(tmp_path / "missing.parquet")
    row = {name: None for name in COLUMNS} | {"phase": "warmup", "status": "ok", "provenance": "measured", "attention": "included"}
    write_llm_profile(tmp_path / "bad.parquet", [row], {})
    with pytest.raises(ProfileFileError, match="unknown phase"):
        read_llm_profile(tmp_path / "bad.parquet")
    pd.DataFrame({"x": [1]}).to_parquet(tmp_path / "plain.parquet")
    with pytest.raises(ProfileFileError):
        read_llm_profile(tmp_path / "plain.parquet")


def test_importing_the_llm_profiler_does_not_import_torch():
    code = "import sys, themis.profiler.llm, themis.profiler.llm_table, themis.planner.llm.capacity; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
