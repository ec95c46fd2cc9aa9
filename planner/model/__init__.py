"""The serving model's nouns and rules, shared by the optimiser, the simulator and reports.

`serving` (Group, StageAllocation, Stage, Step, Schedule, SurgeRule: the plan contract),
`config` (PlanConfig, SimConfig and every default), `cost` (the one pricing rule),
`transitions` (the one rule turning running replicas into a requested allocation),
`latency` and `fit_report` (service time per batch and cores, fitted from a profile, and
how far to trust it), `queueing` (the SLO-percentile latency estimate). It imports nothing
else from the planner.
"""
