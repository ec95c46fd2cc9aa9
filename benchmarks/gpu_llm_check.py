"""GPU check of the LLM profiler and of the published GPU profiles (needs an NVIDIA GPU).

1. `profile_llm("tiny_llm")` on the GPU: the profiler's CUDA path (a worker process pinned
   to the GPU by its UUID, CUDA-event timing) -> OUT/tiny_llm_gpu.parquet.
2. A Llama-2-7B-sized model: `TinyLlm(LLAMA2_7B_SHAPE)`, random fp16 weights, PyTorch eager
   with scaled_dot_product_attention (no CUDA graphs, no fused kernels: slower than vLLM
   at small batches), timed over prefill and decode cells -> OUT/llama2_7b_shape_gpu.parquet.
   Each cell is compared with the published Llama-2-7B H100 iteration-time model (vidur's
   operators plus the attention estimate), and the measured cells are fitted too, so the
   fitted attention terms can be set beside the estimated ones.

    python benchmarks/gpu_llm_check.py --out DIR          # on the GPU machine
    python benchmarks/gpu_llm_check.py --out DIR --cpu    # a small dry run of the same code on the CPU
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from themis.planner.llm.iteration import COEF_NAMES, fit_iteration_model
from themis.planner.llm.published import published_profile
from themis.profiler.devices import cpu_device, discover_gpus, environment
from themis.profiler.llm import LlmCellRecord, LlmGrid, LlmProfileRequest, measure_llm_cell, profile_llm
from themis.profiler.llm_table import write_llm_profile
from themis.profiler.measure import Budget

BUDGET = Budget(budget_s=0.25, min_samples=5, warmup=2)
FULL_GRID = LlmGrid(
    prompt_tokens=(128, 512, 1024, 2048, 4096), prefill_batch_sizes=(1, 4),
    context_tokens=(128, 512, 1024, 2048), decode_batch_sizes=(1, 8, 32, 64, 128, 256), max_cell_tokens=70_000,
)
DRY_GRID = LlmGrid(prompt_tokens=(16, 64), prefill_batch_sizes=(1, 2), context_tokens=(32, 128), decode_batch_sizes=(1, 4))


def build_7b(device: str, dry: bool):
    import torch

    from themis.sample_models.tiny_llm import LLAMA2_7B_SHAPE, LlmShape, TinyLlm

    shape = LlmShape(vocab=512, d_model=128, layers=2, heads=4, mlp_hidden=344) if dry else LLAMA2_7B_SHAPE
    torch.manual_seed(0)
    torch.set_default_dtype(torch.float32 if dry else torch.float16)
    with torch.device(device):
        module = TinyLlm(shape).eval()
    torch.set_default_dtype(torch.float32)
    return module


def measure_7b(device, grid: LlmGrid, dry: bool) -> pd.DataFrame:
    module = build_7b("cpu" if device.kind == "cpu" else "cuda", dry)
    rows = []
    for cell in grid.cells():
        record = LlmCellRecord(
            model="llama-2-7b-shaped (random weights, PyTorch eager)", device_kind=device.kind, device_name=device.name,
            device_id=device.device_id, cores=1, dtype="float32" if dry else "float16", phase=cell.phase,
            batch_size=cell.batch_size, prompt_tokens=cell.prompt_tokens, context_tokens=cell.context_tokens,
        )
        row = measure_llm_cell(record, module, BUDGET, "cpu" if device.kind == "cpu" else "cuda").to_row()
        print(f"  {row['phase']:7s} b={row['batch_size']:<4d} prompt={row['prompt_tokens']:<5d} context={row['context_tokens']:<5d} "
              f"{row['p50_ms']:9.3f} ms {row['status']} {row['error']}", flush=True)
        rows.append(row)
    return pd.DataFrame(rows)


def compare(measured: pd.DataFrame) -> str:
    published = fit_iteration_model(published_profile("Llama-2-7b-hf", "h100"))
    ok = measured[measured["status"] == "ok"].copy()
    shapes = zip(ok["phase"], ok["batch_size"], ok["prompt_tokens"], ok["context_tokens"])
    ok["published_ms"] = [published.predict_cell_ms(*shape) for shape in shapes]
    ok["measured/published"] = ok["p50_ms"] / ok["published_ms"]
    cells = ok[["phase", "batch_size", "prompt_tokens", "context_tokens", "p50_ms", "published_ms", "measured/published"]]
    fitted = fit_iteration_model(ok)
    coef = pd.DataFrame({"coefficient": COEF_NAMES, "fitted to this GPU (ms)": fitted.coef_ms, "published H100 (ms)": published.coef_ms})
    summary = ok.groupby("phase")["measured/published"].describe()[["count", "min", "50%", "max"]]
    return "\n\n".join([
        cells.to_markdown(index=False, floatfmt=".4g"),
        "measured / published, by phase:\n\n" + summary.to_markdown(floatfmt=".3g"),
        coef.to_markdown(index=False, floatfmt=".4g"),
        f"fit to the measured cells: leave-one-out MAPE {fitted.fit_report.loo_mape}, held-out {fitted.fit_report.heldout_mape:.3f}",
    ])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cpu", action="store_true", help="dry run on the CPU with small shapes")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    device = cpu_device() if args.cpu else discover_gpus()[0]
    print(f"device: {device.kind} {device.name} {device.device_id}", flush=True)
    grid = DRY_GRID if args.cpu else FULL_GRID
    tiny = profile_llm(LlmProfileRequest("tiny_llm", (1,), grid, BUDGET, device=device), out=args.out / "tiny_llm_gpu.parquet")
    print(f"tiny_llm: {len(tiny)} cells, {int((tiny['status'] == 'ok').sum())} ok ({time.perf_counter() - started:.0f} s)", flush=True)
    measured = measure_7b(device, grid, args.cpu)
    env = {**environment([device]), "load_average": list(os.getloadavg())}
    write_llm_profile(args.out / "llama2_7b_shape_gpu.parquet", measured.to_dict(orient="records"), env)
    report = f"device: {device.name}; torch {env['torch_version']}; {time.perf_counter() - started:.0f} s\n\n" + compare(measured)
    (args.out / "gpu_llm_check.md").write_text(report + "\n", encoding="utf-8")
    print(report)
    print(f"median tiny_llm decode b=1: {np.median(tiny.loc[(tiny['phase'] == 'decode') & (tiny['batch_size'] == 1), 'p50_ms']):.3f} ms")


if __name__ == "__main__":
    main()
