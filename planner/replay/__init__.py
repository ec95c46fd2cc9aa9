"""`themis replay`: send a trace to a real HTTP server, and run a plan on a real server.

- `replayer`: the open-loop sender (each request at its scheduled time, latency measured
  from that time, the sender's own lag recorded).
- `templates`: what each request looks like (a JSON body template, or the v2 inference
  protocol of Triton and KServe).
- `request_log`: one row per request, the Parquet contract.
- `server`, `replicas`, `cpus`, `plan_applier`: the reference server that implements the
  serving model (SPEC) with real replica processes and applies a plan's steps on time.
- `comparison`: the same arrivals through the simulator, set beside the real run.
- `session`: the two entry points the CLI calls (`replay_url`, `serve_and_replay`).
"""
