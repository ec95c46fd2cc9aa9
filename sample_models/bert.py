"""A BERT-base-style encoder (Devlin et al., 2019) in plain `torch.nn`.

bert-base-uncased sizes: vocabulary 30,522, 512 positions, 2 token types, 12 post-norm
layers of 768 hidden units, 12 heads, 3,072 feed-forward units with GELU, and the tanh
pooler: 109,482,240 parameters, the count of Hugging Face's `BertModel` (the "110M" of
the paper). The input is a batch of token ids; the per-item input shape is the sequence
length, so `--input-shape 384` profiles 384-token sequences.
"""

from __future__ import annotations

import torch
from torch import nn

from themis.sample_models import SEED

VOCAB, POSITIONS, TOKEN_TYPES, HIDDEN, LAYERS, HEADS, FEED_FORWARD = 30_522, 512, 2, 768, 12, 12, 3072


class BertEncoder(nn.Module):
    """Embeddings (word + position + type, LayerNorm), 12 encoder layers, pooler."""

    def __init__(self) -> None:
        super().__init__()
        self.word = nn.Embedding(VOCAB, HIDDEN)
        self.position = nn.Embedding(POSITIONS, HIDDEN)
        self.token_type = nn.Embedding(TOKEN_TYPES, HIDDEN)
        self.norm = nn.LayerNorm(HIDDEN, eps=1e-12)
        layer = nn.TransformerEncoderLayer(HIDDEN, HEADS, FEED_FORWARD, dropout=0.1, activation="gelu", layer_norm_eps=1e-12, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
        self.pooler = nn.Linear(HIDDEN, HIDDEN)

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(token_ids.shape[1], device=token_ids.device)
        hidden = self.word(token_ids) + self.position(positions) + self.token_type(torch.zeros_like(token_ids))
        hidden = self.encoder(self.norm(hidden))
        return torch.tanh(self.pooler(hidden[:, 0]))


def bert_base(input_shape: tuple[int, ...]) -> nn.Module:
    if input_shape[0] > POSITIONS:
        raise ValueError(f"sequence length {input_shape[0]} exceeds BERT's {POSITIONS} positions")
    torch.manual_seed(SEED)
    return BertEncoder().eval()
