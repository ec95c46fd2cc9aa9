"""Derive `vidur_iteration_ms.csv` from vidur's per-operator profiles (run from the repository root).

    .venv/bin/python data/llm/make_vidur_table.py /path/to/fixtures/llm

reads `vidur_<gpu>_<model>_mlp.csv` (byte-identical copies of microsoft/vidur's
`data/profiling/compute/<gpu>/<model>/mlp.csv`, see README.md) and writes one row per
(model, gpu, num_tokens) with the per-iteration time without attention at tensor
parallelism 1 (`themis.planner.llm.published.vidur_iteration_ms`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from themis.common.atomic import write_text_atomic
from themis.planner.llm.published import GPUS, MODELS, vidur_iteration_ms


def main(source_dir: Path) -> None:
    frames = []
    for gpu in GPUS:
        for model, shape in MODELS.items():
            raw = pd.read_csv(source_dir / f"vidur_{gpu}_{model}_mlp.csv")
            frames.append(vidur_iteration_ms(raw, shape).assign(model=model, gpu=gpu))
    table = pd.concat(frames, ignore_index=True)[["model", "gpu", "num_tokens", "p50_ms", "mean_ms"]]
    out = Path(__file__).with_name("vidur_iteration_ms.csv")
    write_text_atomic(out, table.to_csv(index=False, float_format="%.6g"))
    print(f"wrote {len(table)} rows to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
