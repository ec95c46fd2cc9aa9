"""The fold of a plan into a recurring period and the merge of its replica counts into
KEDA cron windows, checked against an exhaustive search on small periods."""

from __future__ import annotations

import itertools

from hypothesis import example, given, settings
from hypothesis import strategies as st

from themis.reports.k8s_recurrence import Recurrence, recurrence, replica_windows


def envelope(baseline: int, windows, n: int) -> list[int]:
    """What KEDA runs at each minute: the highest active window, else the baseline."""
    levels = [baseline] * n
    for w in windows:
        for i in range(w.length):
            levels[(w.start + i) % n] = max(levels[(w.start + i) % n], w.replicas)
    return levels


def fewest_by_search(levels: list[int]) -> int:
    """The smallest number of circular windows (level above the minimum, never above the
    levels they cover) whose envelope is `levels`, by trying every set, smallest first."""
    n, low = len(levels), min(levels)
    candidates = [(start, length, level) for start in range(n) for length in range(1, n) for level in set(levels) - {low}
                  if all(levels[(start + i) % n] >= level for i in range(length))]
    for size in range(0, len(candidates) + 1):
        for chosen in itertools.combinations(candidates, size):
            got = [low] * n
            for start, length, level in chosen:
                for i in range(length):
                    got[(start + i) % n] = max(got[(start + i) % n], level)
            if got == levels:
                return size
    raise AssertionError("no set of windows reproduces the levels")


@settings(max_examples=150)
@given(st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=7))
@example([2, 3, 2, 3, 1, 1])  # one window at 2 spans both 3s, which need one each
@example([1, 4, 2, 4, 3, 4])
def test_windows_reproduce_the_levels_with_the_fewest_triggers(levels) -> None:
    baseline, windows = replica_windows(levels)
    assert baseline == min(levels)
    assert envelope(baseline, windows, len(levels)) == levels
    assert all(0 < w.length < len(levels) for w in windows)
    if len(levels) <= 6:
        assert len(windows) == fewest_by_search(levels)


def test_a_window_may_wrap_past_the_end_of_the_period() -> None:
    baseline, windows = replica_windows([3, 3, 1, 1, 2, 3])
    assert baseline == 1
    assert sorted((w.start, w.length, w.replicas) for w in windows) == [(4, 4, 2), (5, 3, 3)]


def test_the_period_follows_the_plans_span_and_calendar() -> None:
    def plan(end_s: float, start: str | None) -> dict:
        return {"trace_start": start, "steps": [{"t_start_s": 0.0, "t_end_s": end_s}]}

    assert recurrence(plan(3600.0, None)) == Recurrence("daily", 1440, 0, None)
    assert recurrence(plan(8 * 86400.0, None)).period == "daily"  # no weekday is known
    dated_hour = recurrence(plan(3600.0, "2023-11-16T18:17:03.9"))
    assert (dated_hour.period, dated_hour.offset_minutes) == ("daily", 18 * 60 + 17)
    three_days = recurrence(plan(3 * 86400.0, "2024-01-06T10:00:00+02:00"))
    assert (three_days.period, three_days.offset_minutes) == ("daily", 8 * 60)  # 08:00 UTC
    week = recurrence(plan(7 * 86400.0, "2024-01-06T10:00:00+02:00"))  # a Saturday
    assert (week.period, week.offset_minutes) == ("weekly", 6 * 1440 + 8 * 60)
    assert week.cron(week.offset_minutes) == "0 8 * * 6" and week.clock(week.offset_minutes) == "Sat 08:00"
    assert dated_hour.cron(1440 + 5) == "5 0 * * *"
