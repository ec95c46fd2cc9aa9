"""The `Trace` type: request counts per fixed interval, plus exact arrivals where known.

Every file format becomes one `Trace` (one loader module per format in this package).
Times are seconds from the start of the trace; `start` keeps the calendar time of t = 0
when the source has one. Capacity planning reads `peak_rates` (the busiest window inside
each planning interval); simulation reads `request_arrivals`. LLM traces also carry each
request's prompt and output tokens (`prompt_tokens`, `output_tokens`), aligned with
`arrivals_s` and kept through `window` and `scaled`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np


@dataclass(frozen=True)
class Trace:
    """A request trace in canonical form.

    `counts[i]` requests arrived in [i * interval_s, (i + 1) * interval_s). When the source
    has per-request timestamps, `arrivals_s` holds them sorted (and `counts` is their
    histogram); otherwise it is None and `request_arrivals` synthesises them.
    `prompt_tokens[j]` and `output_tokens[j]` (int32, >= 0) are request j's tokens when the
    source records them (an LLM trace); both None otherwise.
    """

    name: str
    source_format: str
    start: datetime | None
    interval_s: float
    counts: np.ndarray
    arrivals_s: np.ndarray | None = None
    prompt_tokens: np.ndarray | None = None
    output_tokens: np.ndarray | None = None

    def __post_init__(self) -> None:
        tokens = (self.prompt_tokens, self.output_tokens)
        given = any(t is not None for t in tokens)
        if given and (self.arrivals_s is None or any(t is None or len(t) != len(self.arrivals_s) for t in tokens)):
            raise ValueError("prompt_tokens and output_tokens must both be given, one per arrival")

    @property
    def has_tokens(self) -> bool:
        """Whether every request's prompt and output tokens are known (an LLM trace)."""
        return self.prompt_tokens is not None

    @property
    def duration_s(self) -> float:
        return float(len(self.counts) * self.interval_s)

    @property
    def requests(self) -> int:
        return int(self.counts.sum())

    @property
    def rates_rps(self) -> np.ndarray:
        """Mean request rate of every native interval, requests per second."""
        return self.counts / self.interval_s

    @property
    def trace_start(self) -> str | None:
        """`start` as ISO 8601, the form plans and simulations carry."""
        return self.start.isoformat() if self.start is not None else None

    def request_arrivals(self, seed: int = 0) -> np.ndarray:
        """Sorted arrival times in seconds: the real ones, or a seeded Poisson process.

        Without per-request timestamps, each interval's count is spread as a Poisson
        process conditioned on that count (uniform points), so totals per interval are
        exact and a given seed always gives the same arrivals.
        """
        if self.arrivals_s is not None:
            return self.arrivals_s
        rng = np.random.default_rng(seed)
        counts = self.counts.astype(np.int64)
        starts = np.repeat(np.arange(len(counts)) * self.interval_s, counts)
        return np.sort(starts + rng.uniform(0.0, self.interval_s, size=starts.size))

    def rate_series(self, interval_s: float) -> np.ndarray:
        """Mean rate (rps) per interval of `interval_s` seconds (a multiple of the native one,
        or any length when per-request arrivals are known)."""
        n = int(np.ceil(self.duration_s / interval_s - 1e-9))
        if self.arrivals_s is not None:
            counts = np.bincount((self.arrivals_s // interval_s).astype(np.int64), minlength=n)[:n]
            return counts / interval_s
        ratio = interval_s / self.interval_s
        if ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
            raise ValueError(
                f"interval {interval_s:g} s must be a multiple of the trace's {self.interval_s:g} s "
                "(this trace has no per-request times)"
            )
        k = int(round(ratio))
        padded = np.zeros(n * k)
        padded[: len(self.counts)] = self.counts
        return padded.reshape(n, k).sum(axis=1) / interval_s

    def peak_rates(self, interval_s: float, window_s: float = 1.0) -> np.ndarray:
        """Peak rate (rps) inside each interval of `interval_s`: the busiest `window_s`
        window (or the native interval, if that is coarser). Capacity must carry this."""
        if window_s > interval_s:
            raise ValueError(f"the peak window ({window_s:g} s) is longer than the interval ({interval_s:g} s) it is the peak of")
        fine_s = max(window_s, self.interval_s) if self.arrivals_s is None else window_s
        fine = self.rate_series(fine_s)
        per = int(round(interval_s / fine_s))
        if per < 1 or abs(interval_s / fine_s - per) > 1e-9:
            raise ValueError(f"interval {interval_s:g} s must be a multiple of {fine_s:g} s")
        n = int(np.ceil(len(fine) / per))
        padded = np.zeros(n * per)
        padded[: len(fine)] = fine
        return padded.reshape(n, per).max(axis=1)

    def scaled(self, factor: float, seed: int = 0) -> Trace:
        """The same shape of traffic at `factor` times the volume (for sizing experiments).

        Counts are scaled and rounded; per-request arrivals are thinned (factor < 1) or
        dropped so that `request_arrivals` re-synthesises them (factor > 1). A trace with
        tokens keeps them: thinning keeps the tokens of the requests kept; scaling up
        synthesises the arrivals here (exactly what `request_arrivals(seed)` would) and
        gives each one the tokens of a request drawn at random from the same native
        interval of the original (never empty: its scaled count came from that interval).
        """
        rng = np.random.default_rng(seed)
        if self.arrivals_s is not None and factor <= 1.0:
            keep = rng.random(self.arrivals_s.size) < factor
            kept = self.arrivals_s[keep]
            counts = np.bincount((kept // self.interval_s).astype(np.int64), minlength=len(self.counts))
            return replace(self, counts=counts[: len(self.counts)], arrivals_s=kept, **self._tokens_where(keep))
        counts = np.round(self.counts * factor).astype(np.int64)
        up = replace(self, counts=counts, arrivals_s=None, prompt_tokens=None, output_tokens=None)
        if not self.has_tokens:
            return up
        arrivals = up.request_arrivals(seed)
        old_bins = (self.arrivals_s // self.interval_s).astype(np.int64)
        new_bins = (arrivals // self.interval_s).astype(np.int64)
        first = np.searchsorted(old_bins, new_bins, side="left")
        count = np.searchsorted(old_bins, new_bins, side="right") - first
        draws = np.random.default_rng([seed, 1]).random(arrivals.size)  # a stream of its own: arrivals stay as they were
        picks = first + np.minimum((draws * count).astype(np.int64), count - 1)
        return replace(up, arrivals_s=arrivals, prompt_tokens=self.prompt_tokens[picks], output_tokens=self.output_tokens[picks])

    def _tokens_where(self, mask: np.ndarray) -> dict[str, np.ndarray | None]:
        """The token arrays of the requests selected by `mask` (None when there are none)."""
        if not self.has_tokens:
            return {}
        return {"prompt_tokens": self.prompt_tokens[mask], "output_tokens": self.output_tokens[mask]}

    def window(self, t_start_s: float, t_end_s: float) -> Trace:
        """The part of the trace in [t_start_s, t_end_s), re-based to start at 0."""
        first = int(t_start_s // self.interval_s)
        last = int(np.ceil(t_end_s / self.interval_s))
        arrivals, tokens = None, {}
        if self.arrivals_s is not None:
            a = self.arrivals_s
            inside = (a >= first * self.interval_s) & (a < last * self.interval_s)
            arrivals = a[inside] - first * self.interval_s
            tokens = self._tokens_where(inside)
        start = None
        if self.start is not None:
            start = self.start + timedelta(seconds=first * self.interval_s)
        return replace(self, start=start, counts=self.counts[first:last].copy(), arrivals_s=arrivals, **tokens)
