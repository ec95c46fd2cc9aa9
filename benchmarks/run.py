"""Run every benchmark script (`bench_*.py`) in turn; each prints its table and records it."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).parent

if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    selected = sys.argv[1:]
    for script in sorted(HERE.glob("bench_*.py")):
        if selected and not any(name in script.stem for name in selected):
            continue
        print(f"== {script.name}", flush=True)
        runpy.run_path(str(script), run_name="__main__")
