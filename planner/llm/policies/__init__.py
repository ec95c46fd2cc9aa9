"""Planning policies for LLM services: one module each, and the registry `LLM_POLICIES`.

The same names as the batch planner's policies, with the same meaning where it carries over
(`themis.planner.policies`), on the LLM allocation (replicas per replica type). There is no
`vertical`: an LLM replica is not resized in place (its KV cache and weights are laid out
for its device at start), so a change of type is new replicas and a cold start. `hpa` is a
runtime controller, in `themis.planner.llm.compare`.
"""

from themis.planner.llm.policies import horizontal, oracle, static, themis
from themis.planner.llm.policy import LlmPolicy

LLM_POLICIES: dict[str, LlmPolicy] = {
    themis.POLICY.name: themis.POLICY,
    horizontal.POLICY.name: horizontal.POLICY,
    static.POLICY.name: static.POLICY,
    oracle.POLICY.name: oracle.POLICY,
}
