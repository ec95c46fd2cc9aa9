"""LLM serving: the service model, iteration-time models, the iteration-level simulator and
the capacity search (README, "LLM serving model").

- `service`: the model's rules (docstring) and its nouns: `ServerConfig`, `LlmSlo`, `LlmRequests`;
- `iteration`: iteration time T fitted from an LLM profile table (`IterationTimeModel`);
- `published`: profiles from published GPU measurements (vidur) plus an attention estimate;
- `simulate`: the compiled continuous-batching simulator (`simulate_llm`, `LlmSimResult`);
- `capacity`: the largest rate that meets an SLO (`search_capacity`, `CapacityCache`).

Nothing here imports torch; the submodules are imported on demand (numba compiles on first use).
"""
