"""Loading the real bundled traces, checked against independent pandas reads of the same files."""

from __future__ import annotations

import bz2
import gzip
import lzma
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from themis.planner.errors import TraceError
from themis.planner.traffic.canonical import write_trace
from themis.planner.traffic.loading import detect_format, load_trace
from themis.planner.traffic.reading import PER_REQUEST_INTERVAL_S
from themis.planner.traffic.summary import summarize


def _minute_cells(path: Path) -> pd.DataFrame:
    """The per-minute cells of an invitro 2019 file, read independently of themis."""
    frame = pd.read_csv(path)
    return frame.set_index("HashFunction")[[f"minute_{m}" for m in range(1, 1441)]]


def _original_layout(cells: pd.DataFrame, owners: pd.Series, apps: pd.Series) -> pd.DataFrame:
    """The same cells in the original 2019 layout: HashOwner,HashApp,HashFunction,Trigger,1..1440."""
    table = cells.copy()
    table.columns = [str(m) for m in range(1, 1441)]
    ids = pd.DataFrame({"HashOwner": owners.values, "HashApp": apps.values, "HashFunction": cells.index, "Trigger": "http"})
    return pd.concat([ids, table.reset_index(drop=True)], axis=1)


# --------------------------------------------------------------------------- Azure Functions 2019


def test_2019_counts_equal_the_file_cells(functions_2019_path) -> None:
    cells = _minute_cells(functions_2019_path)
    trace = load_trace(functions_2019_path)
    assert trace.source_format == "azure_functions_2019"
    assert trace.interval_s == 60.0 and trace.start is None and trace.arrivals_s is None
    np.testing.assert_array_equal(trace.counts, cells.to_numpy().sum(axis=0))
    assert trace.requests == 155_469


def test_2019_selects_one_function_one_app_and_the_busiest(functions_2019_path) -> None:
    raw = pd.read_csv(functions_2019_path)
    cells = _minute_cells(functions_2019_path)
    function = cells.index[7]
    np.testing.assert_array_equal(load_trace(functions_2019_path, function=function).counts, cells.loc[function].to_numpy())
    app = raw["HashApp"].iloc[3]
    in_app = cells[raw["HashApp"].to_numpy() == app]
    np.testing.assert_array_equal(load_trace(functions_2019_path, app=app).counts, in_app.to_numpy().sum(axis=0))
    busiest = cells.sum(axis=1).nlargest(5).index
    np.testing.assert_array_equal(load_trace(functions_2019_path, top=5).counts, cells.loc[busiest].to_numpy().sum(axis=0))


def test_2019_unknown_function_names_the_option(functions_2019_path) -> None:
    with pytest.raises(TraceError, match="--function"):
        load_trace(functions_2019_path, function="no-such-function")


def test_2019_original_layout_day_files_form_one_timeline(functions_2019_path, tmp_path) -> None:
    raw = pd.read_csv(functions_2019_path)
    cells = _minute_cells(functions_2019_path)
    day1 = _original_layout(cells, raw["HashOwner"], raw["HashApp"])
    # day 2: the first 150 functions only, with shifted counts (a function can vanish for a day)
    day2 = day1.iloc[:150].copy()
    day2.iloc[:, 4:] = np.roll(day2.iloc[:, 4:].to_numpy(), 7, axis=1) + 1
    d01, d02 = tmp_path / "invocations_per_function_md.anon.d01.csv", tmp_path / "invocations_per_function_md.anon.d02.csv"
    day1.to_csv(d01, index=False)
    day2.to_csv(d02, index=False)
    assert detect_format(d01) == "azure_functions_2019"

    trace = load_trace([d02, d01])  # given out of order: put in day order by dNN
    assert len(trace.counts) == 2 * 1440
    np.testing.assert_array_equal(trace.counts[:1440], day1.iloc[:, 4:].to_numpy().sum(axis=0))
    np.testing.assert_array_equal(trace.counts[1440:], day2.iloc[:, 4:].to_numpy().sum(axis=0))

    vanished = cells.index[170]  # present on day 1 only
    one = load_trace([d01, d02], function=vanished)
    np.testing.assert_array_equal(one.counts[:1440], cells.loc[vanished].to_numpy())
    assert one.counts[1440:].sum() == 0


# --------------------------------------------------------------------------- Azure Functions 2021


def test_2021_arrivals_are_end_minus_duration_sorted(functions_2021_path) -> None:
    raw = pd.read_csv(functions_2021_path)
    assert not raw["end_timestamp"].is_monotonic_increasing  # the input really is unsorted
    expected = np.sort((raw["end_timestamp"] - raw["duration"]).to_numpy())
    trace = load_trace(functions_2021_path)
    assert trace.source_format == "azure_functions_2021"
    np.testing.assert_allclose(trace.arrivals_s, expected, rtol=0, atol=1e-9)
    assert np.all(np.diff(trace.arrivals_s) >= 0)
    assert trace.requests == len(raw) == 199
    assert trace.interval_s == PER_REQUEST_INTERVAL_S


def test_2021_selects_functions(functions_2021_path) -> None:
    raw = pd.read_csv(functions_2021_path)
    func = raw["func"].value_counts().index[0]
    mine = raw[raw["func"] == func]
    trace = load_trace(functions_2021_path, function=func)
    np.testing.assert_allclose(trace.arrivals_s, np.sort((mine["end_timestamp"] - mine["duration"]).to_numpy()), atol=1e-9)
    assert load_trace(functions_2021_path, top=1).requests == len(mine)


# --------------------------------------------------------------------------- Azure LLM 2023 / 2024


def test_llm_2023_code_trace_has_8819_requests_over_57_3_minutes(llm_trace_path) -> None:
    trace = load_trace(llm_trace_path)
    stamps = pd.to_datetime(pd.read_csv(llm_trace_path)["TIMESTAMP"])
    assert trace.source_format == "azure_llm"
    assert trace.requests == 8_819 == len(trace.arrivals_s)
    assert trace.start == datetime(2023, 11, 16, 18, 17, 3, 979960)
    span_s = trace.arrivals_s[-1] - trace.arrivals_s[0]  # span: first to last request
    assert round(span_s / 60, 1) == 57.3
    expected = (stamps - stamps.iloc[0]).dt.total_seconds().to_numpy()
    np.testing.assert_allclose(trace.arrivals_s, expected, rtol=0, atol=1e-6)
    assert summarize(trace).max_rps == 67.0  # the README's peak of 67 requests in one second


def test_llm_2024_layout_with_utc_offset(llm_trace_path, tmp_path) -> None:
    raw = pd.read_csv(llm_trace_path)
    stamps = pd.to_datetime(raw["TIMESTAMP"]).dt.tz_localize("UTC")
    raw["TIMESTAMP"] = stamps.dt.strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
    path = tmp_path / "AzureLLMInferenceTrace_code_1week.csv"
    raw.to_csv(path, index=False)
    trace = load_trace(path)
    assert trace.start == datetime(2023, 11, 16, 18, 17, 3, 979960, tzinfo=timezone.utc)
    assert trace.trace_start == "2023-11-16T18:17:03.979960+00:00"
    np.testing.assert_allclose(trace.arrivals_s, load_trace(llm_trace_path).arrivals_s, atol=1e-6)


@pytest.mark.parametrize("suffix", [".gz", ".xz", ".bz2", ".zip"])
def test_compressed_files_read_directly(llm_trace_path, tmp_path, suffix) -> None:
    data = llm_trace_path.read_bytes()
    path = tmp_path / f"trace.csv{suffix}"
    if suffix == ".zip":
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("trace.csv", data)
    else:
        path.write_bytes({".gz": gzip.compress, ".xz": lzma.compress, ".bz2": bz2.compress}[suffix](data))
    np.testing.assert_array_equal(load_trace(path).arrivals_s, load_trace(llm_trace_path).arrivals_s)


# --------------------------------------------------------------------------- generic formats


def test_request_log_epoch_seconds_milliseconds_and_iso(tmp_path) -> None:
    epoch = np.array([1_700_000_010.5, 1_700_000_000.0, 1_700_000_003.25])
    (tmp_path / "s.csv").write_text("timestamp\n" + "\n".join(f"{v:.3f}" for v in epoch) + "\n")
    (tmp_path / "ms.csv").write_text("id,when\n" + "\n".join(f"{i},{v * 1000:.0f}" for i, v in enumerate(epoch)) + "\n")
    iso = [datetime.fromtimestamp(v, tz=timezone.utc).isoformat() for v in epoch]
    (tmp_path / "iso.csv").write_text("time\n" + "\n".join(iso) + "\n")
    for name, options in [("s.csv", {}), ("ms.csv", {"time_column": "when"}), ("iso.csv", {})]:
        trace = load_trace(tmp_path / name, **options)
        assert trace.source_format == "request_log", name
        np.testing.assert_allclose(trace.arrivals_s, [0.0, 3.25, 10.5], atol=1e-6)
        assert trace.start == datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)


def test_request_log_parquet_with_relative_seconds(tmp_path) -> None:
    path = tmp_path / "log.parquet"
    pd.DataFrame({"arrival_s": [4.0, 0.5, 2.0], "model": ["a", "b", "a"]}).to_parquet(path)
    trace = load_trace(path)
    assert trace.start is None
    np.testing.assert_array_equal(trace.arrivals_s, [0.5, 2.0, 4.0])
    np.testing.assert_array_equal(trace.counts, [1, 0, 1, 0, 1])


def test_rate_series_rate_and_count(tmp_path) -> None:
    (tmp_path / "rate.csv").write_text("time,rate\n0,1.5\n60,0\n120,2\n")
    (tmp_path / "count.csv").write_text("time,count\n2024-01-01T00:00:00,90\n2024-01-01T00:01:00,0\n2024-01-01T00:02:00,120\n")
    for name in ("rate.csv", "count.csv"):
        trace = load_trace(tmp_path / name)
        assert trace.source_format == "rate_series" and trace.interval_s == 60.0
        np.testing.assert_array_equal(trace.counts, [90, 0, 120])
    assert load_trace(tmp_path / "count.csv").start == datetime(2024, 1, 1)


def test_rate_series_needs_a_fixed_interval(tmp_path) -> None:
    (tmp_path / "gap.csv").write_text("time,count\n0,1\n60,2\n180,3\n")
    with pytest.raises(TraceError) as caught:
        load_trace(tmp_path / "gap.csv")
    assert caught.value.row == 4 and "gap.csv" in str(caught.value)


# --------------------------------------------------------------------------- canonical form


@pytest.mark.parametrize("name", ["azure_llm_2023_code", "azure_functions_2019", "azure_functions_2021"])
def test_canonical_parquet_round_trip(name, tmp_path) -> None:
    from themis.data import bundled_trace

    original = load_trace(bundled_trace(name))
    path = write_trace(original, tmp_path / "trace.parquet")
    assert detect_format(path) == "themis"
    back = load_trace(path)
    assert (back.name, back.source_format, back.start, back.interval_s) == (
        original.name,
        original.source_format,
        original.start,
        original.interval_s,
    )
    np.testing.assert_array_equal(back.counts, original.counts)
    if original.arrivals_s is None:
        assert back.arrivals_s is None
    else:
        np.testing.assert_array_equal(back.arrivals_s, original.arrivals_s)


def test_canonical_parquet_footer_metadata(llm_trace_path, tmp_path) -> None:
    import pyarrow.parquet as pq

    meta = pq.read_schema(write_trace(load_trace(llm_trace_path), tmp_path / "t.parquet")).metadata
    assert meta[b"themis.schema_version"] == b"1"
    assert meta[b"themis.trace_start"] == b"2023-11-16T18:17:03.979960"
    assert float(meta[b"themis.interval_s"]) == 1.0


# --------------------------------------------------------------------------- rates and peaks


def test_peak_rates_carry_the_busiest_second(llm_trace_path) -> None:
    trace = load_trace(llm_trace_path)
    per_second = np.bincount(trace.arrivals_s.astype(np.int64))
    peaks = trace.peak_rates(60.0)
    assert len(peaks) == int(np.ceil(trace.duration_s / 60))
    for i in (0, 10, len(peaks) - 1):
        assert peaks[i] == per_second[i * 60 : (i + 1) * 60].max()
    assert np.all(peaks >= trace.rate_series(60.0))


def test_summary_of_a_per_minute_trace(functions_2019_path) -> None:
    trace = load_trace(functions_2019_path)
    summary = summarize(trace)
    rates = trace.counts / 60.0
    assert summary.requests == 155_469 and summary.span_s == 86_400.0
    assert summary.mean_rps == pytest.approx(rates.mean())
    assert summary.p99_rps == pytest.approx(np.percentile(rates, 99))
    assert summary.cv == pytest.approx(rates.std() / rates.mean())
    assert summary.peak_to_mean == pytest.approx(rates.max() / rates.mean())
    assert len(summary.sparkline_rps) == 48


def test_llm_rows_out_of_order_give_the_same_trace(llm_trace_path, tmp_path) -> None:
    shuffled = pd.read_csv(llm_trace_path).sample(frac=1.0, random_state=1)
    path = tmp_path / "shuffled.csv"
    shuffled.to_csv(path, index=False)
    original, trace = load_trace(llm_trace_path), load_trace(path)
    assert trace.start == original.start  # the earliest timestamp, not the first row
    np.testing.assert_allclose(trace.arrivals_s, original.arrivals_s, atol=1e-6)
    np.testing.assert_array_equal(trace.counts, original.counts)


def test_a_2019_day_file_cut_short_is_refused(tmp_path, functions_2019_path) -> None:
    lines = functions_2019_path.read_text().splitlines()
    short = tmp_path / "short.csv"
    short.write_text("\n".join(",".join(line.split(",")[:13]) for line in lines) + "\n")  # 10 of 1,440 minutes
    with pytest.raises(TraceError, match="1,440 per-minute columns, this one 10"):
        load_trace(short)


def test_bad_cells_are_shown_as_the_file_has_them_not_as_numpy_values(tmp_path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("time\n1.5\n-7\nnan\n")
    with pytest.raises(TraceError) as caught:
        load_trace(path)
    assert "np." not in str(caught.value)


def test_a_peak_window_longer_than_the_interval_says_so(llm_trace_path) -> None:
    with pytest.raises(ValueError, match="peak window .600 s. is longer than the interval .60 s."):
        load_trace(llm_trace_path).peak_rates(60.0, window_s=600.0)
