"""The names a user picks from on the command line, kept apart from the code behind them.

The CLI lists these in `--help` and validates options against them without importing
pandas, scipy or numba, so that `themis --help` answers at once.
"""

TRACE_FORMATS = ("azure_functions_2019", "azure_functions_2021", "azure_llm", "request_log", "rate_series", "themis")
FORECAST_METHODS = ("last", "moving_max", "ewma", "seasonal_naive", "holt_winters", "lstm", "auto")
PLANNED_POLICIES = ("themis", "horizontal", "vertical", "static", "oracle")
POLICIES = ("themis", "horizontal", "vertical", "hpa", "static", "oracle")
"""Every policy `compare` runs: the planned ones plus the reactive `hpa`."""
DAY_S = 86_400.0
WEEK_S = 7 * DAY_S
