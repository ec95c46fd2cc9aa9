"""A tiny decoder-only transformer with a KV cache: the LLM that themis measures on a CPU.

Llama-shaped but small: token embedding, 4 pre-norm layers (RMSNorm, causal self-attention
with rotary positions, SiLU-gated MLP), a final RMSNorm and an LM head tied to the
embedding; d_model 256, 4 heads of 64, MLP 688, vocabulary 4,096: 4,212,992 parameters.
Weights are random but seeded, so every build is identical.

The serving interface (what `themis.profiler.llm` times, and what a user's LLM factory
must return) is an attribute and two methods on a `torch.nn.Module`:

    vocab_size: int
    prefill(tokens: LongTensor[batch, prompt], max_tokens: int) -> (logits[batch, vocab], cache)
    decode(tokens: LongTensor[batch], cache) -> (logits[batch, vocab], cache)

- `prefill` runs the prompts (all of one length) from an empty cache that has room for
  `max_tokens` tokens per sequence, and returns the next-token logits of the last position.
- `decode` runs one new token per sequence after the cached context and returns a cache
  one token longer. It must leave the cache it was given usable: decoding twice from the
  same cache overwrites the same slot, which is how the profiler times a decode step at a
  fixed context length.

The same code at `LLAMA2_7B_SHAPE` is a Llama-2-7B-sized model (random weights), which the
GPU check in `benchmarks/gpu_llm_check.py` times against the published profiles.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from themis.sample_models import SEED

ROPE_BASE = 10_000.0


@dataclass(frozen=True)
class LlmShape:
    """Sizes of the decoder. `LlmShape()` is tiny_llm; `LLAMA2_7B_SHAPE` is Llama-2-7B's
    (with the LM head tied to the embedding), used to time a full-size model on a GPU."""

    vocab: int = 4096
    d_model: int = 256
    layers: int = 4
    heads: int = 4
    mlp_hidden: int = 688

    @property
    def head_dim(self) -> int:
        return self.d_model // self.heads


LLAMA2_7B_SHAPE = LlmShape(vocab=32_000, d_model=4096, layers=32, heads=32, mlp_hidden=11_008)


@dataclass(frozen=True)
class KvCache:
    """Keys and values of every layer, preallocated for `capacity` tokens; `length` are filled.

    `keys`/`values`: [layers, batch, heads, capacity, head_dim]. A new cache object shares
    the tensors, so a step costs no copy.
    """

    keys: torch.Tensor
    values: torch.Tensor
    length: int

    @property
    def capacity(self) -> int:
        return int(self.keys.shape[3])


class RmsNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def _rotate(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding of x [batch, heads, tokens, head_dim] at `positions` [tokens]."""
    half = x.shape[-1] // 2
    inv_freq = ROPE_BASE ** (-torch.arange(half, dtype=torch.float32, device=x.device) / half)
    angles = positions.to(torch.float32)[:, None] * inv_freq[None, :]
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Block(nn.Module):
    """One pre-norm decoder layer that reads and writes its slice of the KV cache."""

    def __init__(self, shape: LlmShape) -> None:
        super().__init__()
        self.shape = shape
        self.attn_norm = RmsNorm(shape.d_model)
        self.qkv = nn.Linear(shape.d_model, 3 * shape.d_model, bias=False)
        self.out = nn.Linear(shape.d_model, shape.d_model, bias=False)
        self.mlp_norm = RmsNorm(shape.d_model)
        self.gate_up = nn.Linear(shape.d_model, 2 * shape.mlp_hidden, bias=False)
        self.down = nn.Linear(shape.mlp_hidden, shape.d_model, bias=False)

    def forward(self, x: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, start: int) -> torch.Tensor:
        batch, tokens, _ = x.shape
        heads, head_dim = self.shape.heads, self.shape.head_dim
        q, k, v = self.qkv(self.attn_norm(x)).view(batch, tokens, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
        positions = torch.arange(start, start + tokens, device=x.device)
        q, k = _rotate(q, positions), _rotate(k, positions)
        keys[:, :, start : start + tokens] = k
        values[:, :, start : start + tokens] = v
        end = start + tokens
        # prompt tokens attend causally among themselves; a decode token attends to everything cached
        attended = F.scaled_dot_product_attention(q, keys[:, :, :end], values[:, :, :end], is_causal=start == 0 and tokens > 1)
        x = x + self.out(attended.transpose(1, 2).reshape(batch, tokens, self.shape.d_model))
        gate, up = self.gate_up(self.mlp_norm(x)).chunk(2, dim=-1)
        return x + self.down(F.silu(gate) * up)


class TinyLlm(nn.Module):
    """Embedding, `shape.layers` blocks, final norm, tied LM head; `prefill`/`decode` with a KV cache."""

    def __init__(self, shape: LlmShape | None = None) -> None:
        super().__init__()
        self.shape = shape = shape or LlmShape()
        self.vocab_size = shape.vocab
        self.embed = nn.Embedding(shape.vocab, shape.d_model)
        self.blocks = nn.ModuleList(Block(shape) for _ in range(shape.layers))
        self.norm = RmsNorm(shape.d_model)

    def _run(self, tokens: torch.Tensor, cache: KvCache) -> torch.Tensor:
        x = self.embed(tokens)
        for layer, block in enumerate(self.blocks):
            x = block(x, cache.keys[layer], cache.values[layer], cache.length)
        # only the last position's logits: the next token (as vLLM samples)
        return self.norm(x[:, -1]) @ self.embed.weight.T

    def prefill(self, tokens: torch.Tensor, max_tokens: int) -> tuple[torch.Tensor, KvCache]:
        batch, prompt = tokens.shape
        if max_tokens < prompt:
            raise ValueError(f"max_tokens {max_tokens} is shorter than the prompt ({prompt} tokens)")
        param = self.embed.weight
        shape = (self.shape.layers, batch, self.shape.heads, max_tokens, self.shape.head_dim)
        keys = torch.empty(shape, dtype=param.dtype, device=param.device)
        cache = KvCache(keys, torch.empty_like(keys), 0)
        logits = self._run(tokens, cache)
        return logits, KvCache(cache.keys, cache.values, prompt)

    def decode(self, tokens: torch.Tensor, cache: KvCache) -> tuple[torch.Tensor, KvCache]:
        if cache.length >= cache.capacity:
            raise ValueError(f"the KV cache is full ({cache.capacity} tokens)")
        logits = self._run(tokens[:, None], cache)
        return logits, KvCache(cache.keys, cache.values, cache.length + 1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Next-token logits of a batch of prompts (a prefill with no room to decode)."""
        return self.prefill(tokens, tokens.shape[1])[0]


def tiny_llm(input_shape: tuple[int, ...] = (128,)) -> nn.Module:
    """The seeded model; `input_shape` (the prompt length) is accepted for the registry's sake."""
    del input_shape  # any prompt length works: rotary positions have no table to outgrow
    torch.manual_seed(SEED)
    return TinyLlm().eval()
