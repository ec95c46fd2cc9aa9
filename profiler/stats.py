"""Is one measurement slower than another? A ratio with a confidence interval.

Two profiles of the same model taken minutes apart differ: each worker process lands at
its own speed (on this project's shared 2-vCPU machine, medians of back-to-back processes
of one model spread by up to 2x) and each call jitters within a process. A gate that
compares two medians as numbers flaps. This module compares the raw calls of a cell in two
profiles (`samples_ms`, split by `process_samples`) with the processes as the units:

- **Both profiles with two or more processes** (`themis profile --processes`, default 3):
  Welch's t interval (scipy) on the log of each process's statistic. The ratio is that of
  the processes' geometric means. With few processes the t quantile is large (df ~ 2-4),
  which is what an honest interval from so few independent units must be; a two-level
  bootstrap with 2-3 clusters covers far less than its nominal 95%.
- **Otherwise** (a profile measured with one process): a two-level bootstrap, resampling
  the processes with replacement and then the calls within each chosen process (with one
  process, just its calls). Its interval covers the jitter within the processes only.
  Seeded, so a verdict does not change between runs of the gate on the same files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000
CONFIDENCE = 0.95
_CHUNK_VALUES = 4_000_000  # resampled values held at once (32 MB)

Statistic = Callable[..., np.ndarray]


@dataclass(frozen=True)
class RatioEstimate:
    """current / baseline of a statistic, with its confidence interval."""

    ratio: float
    low: float
    high: float
    confidence: float = CONFIDENCE
    bootstrapped: bool = True  # False: no raw calls on one side, the interval is the point
    method: str = "bootstrap"  # "processes" (Welch t on per-process statistics), "bootstrap" or "point"

    def describe(self) -> str:
        """`slower by 18% (95% CI 12–25%)`; `faster by 4% (95% CI −1–9%)` (the interval in the same direction)."""
        change = self.ratio - 1.0
        word = "slower" if change >= 0 else "faster"
        sign = 1.0 if change >= 0 else -1.0
        if not self.bootstrapped:
            return f"{word} by {abs(change):.0%} (no raw samples in one profile: no confidence interval)"
        low, high = sorted((sign * (self.low - 1.0), sign * (self.high - 1.0)))
        return f"{word} by {abs(change):.0%} ({self.confidence:.0%} CI {_percent(low)}–{_percent(high)}%)"

    def is_confidently_slower(self, limit: float) -> bool:
        """True when even the interval's lower end is slower than `1 + limit`."""
        return self.low > 1.0 + limit


def _percent(value: float) -> str:
    return f"{value * 100:.0f}".replace("-", "−")


def split_by_process(samples_ms: Sequence[float], process_samples: Sequence[int]) -> list[np.ndarray]:
    """A profile cell's pooled calls back into one array per worker process."""
    values = np.asarray(samples_ms, dtype=float)
    counts = [int(n) for n in process_samples] or [len(values)]
    if sum(counts) != len(values):
        raise ValueError(f"process_samples add up to {sum(counts)}, samples_ms holds {len(values)}")
    return [part for part in np.split(values, np.cumsum(counts)[:-1]) if len(part)]


def quantile_statistic(q: float) -> Statistic:
    """The q-quantile along an axis (q = 0.5: the median)."""
    return lambda values, axis=None: np.quantile(values, q, axis=axis)


def mean_statistic(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    return np.mean(values, axis=axis)


def ratio_ci(
    baseline: Sequence[np.ndarray],
    current: Sequence[np.ndarray],
    *,
    statistic: Statistic = quantile_statistic(0.5),
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> RatioEstimate:
    """statistic(current) / statistic(baseline) with its interval: Welch's t on the processes'
    log statistics when both sides have two or more processes, else a two-level bootstrap.

    `baseline` and `current` hold one array of calls (ms) per worker process.
    """
    base, cur = [np.asarray(p, dtype=float) for p in baseline if len(p)], [np.asarray(p, dtype=float) for p in current if len(p)]
    if not base or not cur:
        raise ValueError("each side needs at least one call")
    if len(base) >= 2 and len(cur) >= 2:
        return _welch_ratio(base, cur, statistic, confidence)
    point = float(statistic(np.concatenate(cur))) / float(statistic(np.concatenate(base)))
    rng = np.random.default_rng(seed)
    ratios = _bootstrap(cur, statistic, resamples, rng) / _bootstrap(base, statistic, resamples, rng)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(ratios, [tail, 1.0 - tail])
    return RatioEstimate(point, float(low), float(high), confidence)


def _welch_ratio(base: list[np.ndarray], cur: list[np.ndarray], statistic: Statistic, confidence: float) -> RatioEstimate:
    """exp of Welch's interval for mean(log statistic(current process)) - mean(log statistic(baseline process))."""
    from scipy import stats  # here: scipy is slow to import and only the gate needs it

    log_base = np.log([float(statistic(p)) for p in base])
    log_cur = np.log([float(statistic(p)) for p in cur])
    difference = float(log_cur.mean() - log_base.mean())
    if np.ptp(log_base) == 0 and np.ptp(log_cur) == 0:  # identical processes (e.g. a profile against itself)
        return RatioEstimate(float(np.exp(difference)), float(np.exp(difference)), float(np.exp(difference)), confidence, method="processes")
    interval = stats.ttest_ind(log_cur, log_base, equal_var=False).confidence_interval(confidence)
    return RatioEstimate(float(np.exp(difference)), float(np.exp(interval.low)), float(np.exp(interval.high)), confidence, method="processes")


def _bootstrap(processes: list[np.ndarray], statistic: Statistic, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """`resamples` values of the statistic: processes drawn with replacement, then calls within each.

    Resamples that drew the same processes have the same shape, so each such group is
    drawn as one matrix (with 3 processes there are only 10 groups).
    """
    count = len(processes)
    chosen = np.sort(rng.integers(0, count, size=(resamples, count)), axis=1)
    groups, which = np.unique(chosen, axis=0, return_inverse=True)
    out = np.empty(resamples)
    for index, group in enumerate(groups):
        rows = np.flatnonzero(which.ravel() == index)
        width = sum(len(processes[p]) for p in group)
        for start in range(0, len(rows), max(1, _CHUNK_VALUES // width)):
            block = rows[start:start + max(1, _CHUNK_VALUES // width)]
            pooled = np.concatenate(
                [processes[p][rng.integers(0, len(processes[p]), size=(len(block), len(processes[p])))] for p in group], axis=1
            )
            out[block] = statistic(pooled, axis=1)
    return out
