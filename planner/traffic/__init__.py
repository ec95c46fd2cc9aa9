"""Traffic: what arrives at a service, and what is expected to.

- `trace`: the `Trace` type (counts per interval, exact arrivals where known);
- `loading`: `load_trace` detects a file's format and dispatches to one module per format
  (`azure_functions_2019`, `azure_functions_2021`, `azure_llm`, `request_log`,
  `rate_series`, `canonical`), all reading through `reading`;
- `summary`: what `themis trace inspect` reports;
- `forecast`: rolling peak-rate forecasters without look-ahead; `backtest` scores them.
"""
