"""Controllers that decide allocations while a simulation runs (`Controller` protocol).

`schedule` (a plan replayed step by step, and `controller_for`), `surge` (themis at run
time: the plan plus in-place resizes on a surge), `hpa` (the Kubernetes HPA, a runtime
policy with no plan).
"""
