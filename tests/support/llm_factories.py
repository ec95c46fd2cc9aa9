"""User LLM factories for the profiling tests: the serving interface of tiny_llm at a size that
measures in seconds (one layer, d_model 16), so the whole default LLM grid runs quickly."""

from __future__ import annotations

from themis.sample_models.tiny_llm import LlmShape, TinyLlm


def micro_llm() -> TinyLlm:
    """Annotated: `themis profile` knows from the annotation, without calling it, that this is an LLM."""
    import torch

    torch.manual_seed(0)
    return TinyLlm(LlmShape(vocab=64, d_model=16, layers=1, heads=1, mlp_hidden=16)).eval()


def unannotated_llm():  # on purpose: nothing says what it returns
    return micro_llm()
