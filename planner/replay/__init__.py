"""`themis replay`: send a trace to a real HTTP server, and run a plan on a real server.

- `replayer`: the open-loop sender (each request at its scheduled time, latency measured
  from that time, the sender's own lag recorded).
- `templates`: what each request looks like (a JSON body template, or the v2 inference
  protocol of Triton and KServe).
- `request_log`: one row per request, the Parquet contract.
- `server`, `replicas`, `cpus`: the reference server that implements the serving model
  (SPEC) with real replica processes, pinned or under CPU quotas.
- `control`: the plan's runtime controller (the simulator's, through its `Controller`
  protocol: planned steps, and the `themis` surge controller) run against the server.
- `comparison`: the same arrivals through the simulator, set beside the real run.
- `session`: the two entry points the CLI calls (`replay_url`, `serve_and_replay`).
"""
