"""LLM serving: the service model, iteration-time models, the iteration-level simulator and
the capacity search (README, "LLM serving model").

- `service`: the model's rules (docstring) and its nouns: `ServerConfig`, `LlmSlo`, `LlmRequests`;
- `iteration`: iteration time T fitted from an LLM profile table (`IterationTimeModel`);
- `published`: profiles from published GPU measurements (vidur) plus an attention estimate;
- `simulate`: the compiled continuous-batching simulator (`simulate_llm`, `simulate_fleet`,
  `LlmFleet` for replicas that come and go, `LlmSimResult`);
- `capacity`: the largest rate that meets an SLO (`search_capacity`, `CapacityCache`);
- `plan`: replicas per replica type per interval for the SLO (`plan_llm`, `LlmPlan`), stepping
  a policy of `policies` (one module each) through `policy`'s loop;
- `compare`: every policy replayed through the simulator, and `hpa` on a queue metric
  (`compare_llm`); `check`: the CI capacity gate, cost per million tokens included.

Nothing here imports torch; the submodules are imported on demand (numba compiles on first use).
"""
