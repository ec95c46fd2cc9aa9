"""`themis --help` must answer in under 0.5 s: wall time of the real console script.

Each round runs `themis --help` and, for scale, a bare `python -c pass` in fresh
processes (interleaved, so machine noise hits both); medians of 15 rounds.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from _results import markdown_table, record

ROUNDS = 15
TARGET_S = 0.5
THEMIS = Path(sys.executable).with_name("themis")


def wall_s(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    help_s, bare_s, models_s = [], [], []
    for _ in range(ROUNDS):
        help_s.append(wall_s([str(THEMIS), "--help"]))
        bare_s.append(wall_s([sys.executable, "-c", "pass"]))
        models_s.append(wall_s([str(THEMIS), "models", "--json"]))
    rows = [
        ["themis --help", f"{statistics.median(help_s):.3f}", f"{min(help_s):.3f}", f"{TARGET_S}", "yes" if statistics.median(help_s) < TARGET_S else "no"],
        ["themis models --json", f"{statistics.median(models_s):.3f}", f"{min(models_s):.3f}", "-", "-"],
        ["python -c pass", f"{statistics.median(bare_s):.3f}", f"{min(bare_s):.3f}", "-", "-"],
    ]
    table = markdown_table(["command", "median s", "min s", "target s", "met"], rows)
    print(table)
    record("cli", "CLI start-up", f"{ROUNDS} interleaved rounds, fresh processes.\n\n{table}")


if __name__ == "__main__":
    main()
