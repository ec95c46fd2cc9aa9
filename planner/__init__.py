"""The planner: from traffic and latency models to a schedule, and its evidence. No torch.

Each question a newcomer asks maps to a subpackage; imports go down this list only:

- `model`: what the serving model is made of (the `Schedule` and its nouns, latency models,
  the queueing estimate, cost, the one replica-transition rule, the settings);
- `traffic`: what arrives (traces in every format) and what is expected to (forecasts);
- `optimise`: how a plan is chosen (candidate space, DP, replica bookkeeping, `plan()`);
- `policies`: the planning policies, one module each, and their registry;
- `simulation`: how a plan fares request by request (event engine, controllers);
- `gates`: policies side by side (`compare`) and the CI verdict (`check`).
"""
