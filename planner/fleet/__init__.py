"""Fleet planning: thousands of services planned at once, on this machine or a Ray cluster.

Each service is planned on its own by `themis.planner.optimise.plan.plan` (the same plan
`themis plan` makes of it); a fleet adds what only the whole answers:

- `spec`: what a fleet is (fleet file, every function of day files, or generated);
- `traffic`, `models`, `synthetic`: each service's trace and latency models, read once;
- `shard`: one task, a shard of services planned into rows of one table;
- `engines`: where tasks run (a local process pool, or Ray);
- `run`: shards written as they finish, `--resume`;
- `packing`, `totals`: the fleet per interval, and its nodes by first-fit decreasing;
- `plan`, `compare`: `themis fleet plan` and `themis fleet compare`.
"""
