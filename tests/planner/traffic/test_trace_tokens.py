"""Traffic with tokens: the Azure LLM and request-log loaders keep each request's prompt and
output tokens, aligned with its arrival through sorting, `window`, `scaled` and the canonical
Parquet form; checked against independent pandas reads of the same files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from themis.planner.errors import TraceError
from themis.planner.traffic.canonical import write_trace
from themis.planner.traffic.loading import load_trace
from themis.planner.traffic.summary import summarize
from themis.planner.traffic.trace import Trace


def _pandas_llm(path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    stamps = pd.to_datetime(frame["TIMESTAMP"])
    return frame.assign(t_s=(stamps - stamps.min()).dt.total_seconds())


def test_azure_llm_tokens_equal_the_file_columns(llm_trace_path) -> None:
    trace = load_trace(llm_trace_path)
    raw = _pandas_llm(llm_trace_path)
    assert trace.has_tokens and trace.prompt_tokens.dtype == np.int32
    np.testing.assert_array_equal(trace.prompt_tokens, raw["ContextTokens"].to_numpy())
    np.testing.assert_array_equal(trace.output_tokens, raw["GeneratedTokens"].to_numpy())


def test_an_unsorted_llm_file_keeps_each_requests_tokens(tmp_path, llm_trace_path) -> None:
    raw = pd.read_csv(llm_trace_path, nrows=500)
    shuffled = raw.sample(frac=1.0, random_state=3)
    path = tmp_path / "shuffled.csv"
    shuffled.to_csv(path, index=False)
    trace = load_trace(path)
    expected = _pandas_llm(path).sort_values("t_s", kind="stable")
    np.testing.assert_allclose(trace.arrivals_s, expected["t_s"].to_numpy(), atol=1e-6)
    np.testing.assert_array_equal(trace.prompt_tokens, expected["ContextTokens"].to_numpy())
    np.testing.assert_array_equal(trace.output_tokens, expected["GeneratedTokens"].to_numpy())


@pytest.mark.parametrize("column", ["ContextTokens", "GeneratedTokens"])
@pytest.mark.parametrize("junk", ["abc", "-3", "", "1.5"])
def test_a_bad_token_cell_names_its_row(tmp_path, llm_trace_path, column, junk) -> None:
    raw = pd.read_csv(llm_trace_path, nrows=50, dtype=str)
    raw.loc[37, column] = junk
    path = tmp_path / "bad.csv"
    raw.to_csv(path, index=False)
    with pytest.raises(TraceError) as error:
        load_trace(path)
    assert error.value.row == 39 and column in str(error.value)


def test_request_log_token_columns_follow_the_sort(tmp_path) -> None:
    path = tmp_path / "log.csv"
    log = {"timestamp": [3.0, 1.0, 2.0, 1.0], "input_tokens": [30, 10, 20, 11], "output_tokens": [3, 1, 2, 4]}
    pd.DataFrame(log).to_csv(path, index=False)
    trace = load_trace(path)
    assert trace.source_format == "request_log"
    np.testing.assert_array_equal(trace.arrivals_s, [1.0, 1.0, 2.0, 3.0])
    np.testing.assert_array_equal(trace.prompt_tokens, [10, 11, 20, 30])  # the stable sort keeps equal times in file order
    np.testing.assert_array_equal(trace.output_tokens, [1, 4, 2, 3])


def test_request_log_without_tokens_has_none(tmp_path) -> None:
    path = tmp_path / "log.csv"
    pd.DataFrame({"timestamp": [1.0, 2.0]}).to_csv(path, index=False)
    assert not load_trace(path).has_tokens


@pytest.mark.parametrize(
    ("columns", "message", "row"),
    [
        ({"input_tokens": [1, 2]}, "output_tokens is missing", 1),
        ({"output_tokens": [1, 2]}, "input_tokens or prompt_tokens is missing", 1),
        ({"prompt_tokens": [1, -2], "output_tokens": [1, 2]}, "prompt_tokens must be a whole number", 3),
        ({"input_tokens": [1, 2], "output_tokens": ["x", 2]}, "output_tokens must be a whole number", 2),
        ({"input_tokens": [1.5, 2], "output_tokens": [1, 2]}, "input_tokens must be a whole number", 2),
    ],
)
def test_request_log_bad_tokens_name_the_column_and_row(tmp_path, columns, message, row) -> None:
    path = tmp_path / "log.csv"
    pd.DataFrame({"timestamp": [1.0, 2.0], **columns}).to_csv(path, index=False)
    with pytest.raises(TraceError, match=message) as error:
        load_trace(path)
    assert error.value.row == row


def test_canonical_form_keeps_tokens(tmp_path, llm_trace_path) -> None:
    trace = load_trace(llm_trace_path).window(600.0, 1200.0)
    path = write_trace(trace, tmp_path / "part.parquet")
    back = load_trace(path)
    np.testing.assert_array_equal(back.arrivals_s, trace.arrivals_s)
    np.testing.assert_array_equal(back.prompt_tokens, trace.prompt_tokens)
    np.testing.assert_array_equal(back.output_tokens, trace.output_tokens)


def test_window_keeps_the_tokens_of_the_requests_inside(llm_trace_path) -> None:
    trace = load_trace(llm_trace_path)
    raw = _pandas_llm(llm_trace_path)
    part = trace.window(600.0, 1200.0)
    inside = raw[(raw["t_s"] >= 600.0) & (raw["t_s"] < 1200.0)]
    np.testing.assert_array_equal(part.prompt_tokens, inside["ContextTokens"].to_numpy())
    np.testing.assert_array_equal(part.output_tokens, inside["GeneratedTokens"].to_numpy())


def _labelled(arrivals: np.ndarray) -> Trace:
    """A per-request trace whose request j has prompt j and output 2j: tokens name their request."""
    counts = np.bincount(arrivals.astype(np.int64), minlength=int(arrivals[-1]) + 1)
    index = np.arange(arrivals.size, dtype=np.int32)
    return Trace("labelled", "request_log", None, 1.0, counts, arrivals, index, 2 * index)


@settings(max_examples=60)
@given(
    gaps=st.lists(st.floats(0.0, 3.0, allow_nan=False), min_size=1, max_size=200),
    factor=st.floats(0.05, 6.0),
    seed=st.integers(0, 2**16),
)
def test_window_and_scale_keep_tokens_with_their_requests(gaps, factor, seed) -> None:
    trace = _labelled(np.cumsum(gaps))
    scaled = trace.scaled(factor, seed=seed)
    assert scaled.has_tokens and scaled.prompt_tokens.size == scaled.arrivals_s.size
    np.testing.assert_array_equal(scaled.output_tokens, 2 * scaled.prompt_tokens)
    source = scaled.prompt_tokens  # the original request each scaled one carries the tokens of
    if factor <= 1.0:  # thinned: the very requests kept
        np.testing.assert_array_equal(scaled.arrivals_s, trace.arrivals_s[source])
    else:  # synthesised: the arrivals request_arrivals(seed) gives, tokens from the same second
        np.testing.assert_array_equal(scaled.arrivals_s, Trace("x", "x", None, 1.0, scaled.counts).request_arrivals(seed))
        np.testing.assert_array_equal(scaled.arrivals_s // 1.0, trace.arrivals_s[source] // 1.0)
    part = trace.window(1.0, 5.0)
    np.testing.assert_allclose(part.arrivals_s + 1.0, trace.arrivals_s[part.prompt_tokens])


def test_inspect_summary_has_token_distributions_and_rates(llm_trace_path) -> None:
    trace = load_trace(llm_trace_path)
    raw = _pandas_llm(llm_trace_path)
    tokens = summarize(trace, 60.0).tokens
    prompt = raw["ContextTokens"]
    assert tokens.prompt.mean == pytest.approx(prompt.mean())
    assert tokens.prompt.p99 == pytest.approx(prompt.quantile(0.99))
    assert tokens.output.max == raw["GeneratedTokens"].max() and tokens.prompt.total == prompt.sum()
    per_minute = raw.groupby(raw["t_s"] // 60)["GeneratedTokens"].sum() / 60.0
    assert tokens.max_output_tokens_per_s == pytest.approx(per_minute.max())
    assert tokens.mean_prompt_tokens_per_s == pytest.approx(prompt.sum() / (np.ceil(trace.duration_s / 60) * 60))
    assert summarize(load_trace(llm_trace_path).scaled(0.5)).tokens is not None
