"""Load a synthetic 17-million-row trace in the Azure LLM 2024 layout: themis `load_trace`
(pyarrow streaming, memory bounded) against plain `pandas.read_csv` of the same file.

Each load runs in its own subprocess so its peak RSS (`ru_maxrss`) is its own; the table
gives medians over REPEATS runs. The file is generated once into /tmp (not the repo).
`--baseline REV` also times the `load_trace` of an earlier commit in the same run
(interleaved), exported with `git archive` into /tmp, so a change to the loader is
measured against the code before it on the same machine at the same load.

    python benchmarks/bench_traces.py                      # 17,000,000 rows (the requirement)
    python benchmarks/bench_traces.py --rows 2e6           # a quick look
    python benchmarks/bench_traces.py --baseline 6c06032   # and the loader as of that commit
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).parent))
from _results import markdown_table, record  # noqa: E402

ROWS = 17_000_000
REPEATS = 3
WEEK_S = 7 * 86_400
START_US = 1_715_299_200_000_000  # 2024-05-10 00:00:00 UTC, the 2024 release's first day
CHUNK_ROWS = 1_000_000

LOADERS = {
    "themis load_trace": "from themis.planner.traffic.loading import load_trace\nresult = load_trace(path)\nrows = result.requests",
    "pandas.read_csv": "import pandas as pd\nresult = pd.read_csv(path)\nrows = len(result)",
    "pandas.read_csv + to_datetime": (
        "import pandas as pd\nresult = pd.read_csv(path)\n"
        "result['TIMESTAMP'] = pd.to_datetime(result['TIMESTAMP'], format='ISO8601')\nrows = len(result)"
    ),
}

CHILD = """
import json, resource, sys, time
path = sys.argv[1]
if len(sys.argv) > 2:  # import themis.common and themis.planner from an exported earlier commit
    from importlib.util import spec_from_file_location
    from pathlib import Path
    class Baseline:
        @classmethod
        def find_spec(cls, name, path=None, target=None):
            top = {{"themis.common": "common", "themis.planner": "planner"}}.get(name)
            if top is None:
                return None
            root = Path(sys.argv[2]) / top
            return spec_from_file_location(name, root / "__init__.py", submodule_search_locations=[str(root)])
    sys.meta_path.insert(0, Baseline)
{imports}
baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
started = time.perf_counter()
{body}
seconds = time.perf_counter() - started
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"seconds": seconds, "peak_mb": peak_mb, "baseline_mb": baseline_mb, "rows": int(rows)}}))
"""


def generate(path: Path, rows: int, seed: int = 0) -> None:
    """Write `rows` requests over one week: sorted Poisson arrivals, 2024 timestamps with +00:00."""
    rng = np.random.default_rng(seed)
    mean_gap_us = WEEK_S * 1e6 / rows
    clock_us = 0.0
    with open(path, "wb") as sink:
        sink.write(b"TIMESTAMP,ContextTokens,GeneratedTokens\n")
        for first in range(0, rows, CHUNK_ROWS):
            n = min(CHUNK_ROWS, rows - first)
            offsets = clock_us + np.cumsum(rng.exponential(mean_gap_us, n))
            clock_us = float(offsets[-1])
            stamps = pa.array(START_US + offsets.astype(np.int64), pa.timestamp("us"))
            table = pa.table(
                {
                    "TIMESTAMP": pc.strftime(stamps, format="%Y-%m-%d %H:%M:%S+00:00"),
                    "ContextTokens": rng.integers(1, 8_000, n),
                    "GeneratedTokens": rng.integers(1, 1_000, n),
                }
            )
            pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False, quoting_style="none"))


def measure(loader: str, path: Path, baseline: Path | None = None) -> dict[str, float]:
    imports = "import pandas, pyarrow, numpy" if "themis" not in loader else "import pandas, pyarrow, numpy, themis.planner.traffic.loading"
    script = CHILD.format(imports=imports, body=LOADERS["themis load_trace" if loader.startswith("themis") else loader])
    extra = [str(baseline)] if baseline is not None and loader != "themis load_trace" and loader.startswith("themis") else []
    done = subprocess.run([sys.executable, "-c", script, str(path), *extra], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def export_baseline(rev: str) -> Path:
    """`common/` and `planner/` as of `rev`, extracted into a temporary folder."""
    root = Path(__file__).resolve().parents[1]
    target = Path(tempfile.mkdtemp(prefix="themis_baseline_"))
    archive = subprocess.run(["git", "-C", str(root), "archive", rev, "common", "planner"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, default=ROWS)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--keep", action="store_true", help="keep the generated file in /tmp")
    parser.add_argument("--baseline", help="also time load_trace as of this git commit (e.g. 6c06032)")
    parser.add_argument("--only-themis", action="store_true", help="time only load_trace (and its baseline), not pandas")
    args = parser.parse_args()
    rows = int(args.rows)
    baseline = export_baseline(args.baseline) if args.baseline else None
    loaders = [n for n in LOADERS if n.startswith("themis") or not args.only_themis]
    loaders += [f"themis load_trace at {args.baseline}"] if baseline else []
    load_before = os.getloadavg()
    path = Path(tempfile.gettempdir()) / f"themis_bench_llm2024_{rows}.csv"
    if not path.exists():
        started = time.perf_counter()
        generate(path, rows)
        print(f"generated {path} ({path.stat().st_size / 1e6:,.0f} MB) in {time.perf_counter() - started:.1f} s", flush=True)
    size_mb = path.stat().st_size / 1e6
    results: dict[str, list[dict[str, float]]] = {name: [] for name in loaders}
    for repeat in range(args.repeats):
        for name in loaders:  # interleaved, so background load hits every loader alike
            results[name].append(measure(name, path, baseline))
            print(f"  run {repeat + 1}: {name}: {results[name][-1]}", flush=True)
    load_after = os.getloadavg()
    base = results["pandas.read_csv" if "pandas.read_csv" in results else loaders[0]]
    base_s = statistics.median(r["seconds"] for r in base)
    base_mb = statistics.median(r["peak_mb"] - r["baseline_mb"] for r in base)
    table = []
    for name, runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        peak = statistics.median(r["peak_mb"] for r in runs)
        growth = statistics.median(r["peak_mb"] - r["baseline_mb"] for r in runs)
        table.append(
            [name, f"{runs[0]['rows']:,}", f"{seconds:.1f}", f"{seconds / base_s:.2f}", f"{peak:,.0f}", f"{growth:,.0f}", f"{growth / base_mb:.2f}"]
        )
    versus = "pandas" if "pandas.read_csv" in results else "load_trace"
    headers = ["loader", "rows", "load s (median)", f"time vs {versus}", "peak RSS MB", "RSS growth MB", f"memory vs {versus}"]
    markdown = markdown_table(headers, table)
    notes = (
        f"\n\nFile: {rows:,} rows, {size_mb:,.0f} MB, Azure LLM 2024 layout (`TIMESTAMP` with `+00:00`, "
        f"`ContextTokens`, `GeneratedTokens`), one week of Poisson arrivals. {args.repeats} runs per loader, "
        "each in a fresh subprocess; RSS growth = peak RSS minus RSS after imports. `load_trace` returns exact "
        "arrival times (float64 s, 136 MB of its growth at 17M rows) plus 1 s counts, parses every timestamp and "
        "checks every row's field count; plain `read_csv` leaves the timestamps as text, `+ to_datetime` parses "
        "them as `load_trace` must. Streaming batches of 4 MB keep the rest of `load_trace`'s memory fixed. "
        "`load_trace` now also reads every request's ContextTokens and GeneratedTokens (two int32 columns, 8 bytes "
        "a request); with --baseline, the last row is the loader of that commit, timed in the same run."
        f" Load average (1/5/15 min) {', '.join(f'{x:.1f}' for x in load_before)} before and "
        f"{', '.join(f'{x:.1f}' for x in load_after)} after, on {os.cpu_count()} CPUs."
    )
    if baseline is not None:
        now = statistics.median(r["seconds"] for r in results["themis load_trace"])
        before = statistics.median(r["seconds"] for r in results[loaders[-1]])
        notes += f" `load_trace` now / at {args.baseline}: {now / before:.2f}x the time (medians, same run)."
    print(markdown + notes)
    if args.only_themis:
        record("traces_tokens", f"Trace loading with tokens against the loader before them: {rows:,} rows", markdown + notes)
    else:
        record("traces", f"Trace loading: {rows:,}-row Azure LLM 2024 layout", markdown + notes)
    if not args.keep:
        path.unlink()


if __name__ == "__main__":
    main()
