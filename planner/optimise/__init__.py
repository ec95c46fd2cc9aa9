"""How a plan is chosen: per interval the cheapest allocation meeting the SLO, over time a policy.

`space` (every homogeneous allocation of a stage), `dp` (the pure multi-stage optimiser),
`solver` (the per-interval solve, cached per load level), `replicas` (what serves once the
delays apply), `loop` (a `Policy` stepped through the intervals), `plan` (`plan()`: trace +
latency models + settings -> `PlanResult`), `pipeline` (service descriptions), `sizing`
(rules of thumb the demo sizes its experiment with).
"""
