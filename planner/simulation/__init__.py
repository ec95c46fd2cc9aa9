"""How a plan fares request by request: a discrete-event simulation of the serving model.

`engine` (the compiled event loop), `driver` (`simulate()`: tables, controllers and the
engine), `tables` (service times as lookup tables), `observation` (what controllers see and
the `Controller` protocol), `result` (`SimulationResult`), `controllers` (a plan replayed,
the themis surge controller, the Kubernetes HPA).
"""
