"""A self-attentive model of what a user clicks next (SASRec, Kang & McAuley 2018), over the user's
tokens (``offline.sequences``: item, kind, time gap) rather than clicks alone. The sequence teacher
and the served student are two sizes of it (``TEACHER``, ``STUDENT``): the student distils the
teacher (``offline.sequence_distill``) and costs one small encoding per request plus a dot product
per candidate.

Each token is embedded as item (id + mean of its content tokens) + kind + gap + position; causal
pre-norm transformer blocks turn the (B, L) tokens into (B, L, d) states, state j summarising tokens
up to j. Two heads read a state:

* next click: logits over the catalogue, the state's dot product with every item's vector (shared
  with the input side, as in SASRec) plus an item bias -- a full softmax;
* conversion: P(conversion | click on item i) from the state and item i's vector (a small MLP), so
  P(click i and convert) = softmax_i x sigmoid, ESMM's factorisation for a next-item model.

Padding is on the right (``offline.sequences``): a request reads the state of its last real token.
No key padding mask: the causal mask alone keeps real tokens from padding, and a padding position
(whose state nothing reads) always has real tokens or itself to attend to. Masking padding keys as
well left-padded rows with nothing to attend to, whose NaN states PyTorch's inference fast path
spread to every position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import nn

from offline.layers import masked_mean
from stream.state.tokens import GAP_BUCKETS, KINDS


@dataclass(frozen=True)
class Shape:
    dim: int
    heads: int
    blocks: int
    dropout: float
    encoder: Literal["attention", "gru"] = "attention"  # gru: GRU4Rec's recurrent state, one ONNX node


TEACHER = Shape(dim=64, heads=2, blocks=2, dropout=0.2)
# The student: a GRU of width 10 (9 % of the teacher's parameters), chosen on MovieLens-100K's
# validation part (docs/explanation/offline.md, "Sequence student"): attention students of width 8-10
# lost 4-6 % validation NDCG@10 to it, and cost more per request (operator overhead, not arithmetic).
STUDENT = Shape(dim=10, heads=1, blocks=1, dropout=0.1, encoder="gru")


class Tokens(NamedTuple):
    item: torch.Tensor  # (B, L) item rows, 0: padding
    kind: torch.Tensor  # (B, L)
    gap: torch.Tensor  # (B, L)


class SequenceModel(nn.Module):
    item_tokens: torch.Tensor  # (items + 1, T)

    def __init__(
        self,
        item_tokens: torch.Tensor,
        n_tokens: int,
        length: int = 50,
        shape: Shape = TEACHER,
    ) -> None:
        """``item_tokens``: (items + 1, T) content token ids of every item row (a buffer, exported
        with the model)."""
        super().__init__()
        dim, heads, blocks, dropout = shape.dim, shape.heads, shape.blocks, shape.dropout
        n_items = len(item_tokens)
        self.register_buffer("item_tokens", item_tokens, persistent=True)
        self.item = nn.Embedding(n_items, dim, padding_idx=0)
        self.token = nn.Embedding(n_tokens, dim, padding_idx=0)
        self.kind = nn.Embedding(KINDS, dim, padding_idx=0)
        self.gap = nn.Embedding(GAP_BUCKETS, dim)
        self.position = nn.Embedding(length, dim)
        self.item_bias = nn.Embedding(n_items, 1)
        self.blocks: nn.Module
        if shape.encoder == "gru":
            self.blocks = nn.GRU(dim, dim, blocks, batch_first=True)
        else:
            layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout, batch_first=True, norm_first=True)
            self.blocks = nn.TransformerEncoder(layer, blocks, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.conversion = nn.Sequential(nn.Linear(3 * dim, dim), nn.ReLU(), nn.Linear(dim, 1))
        self.length = length
        self.shape = shape
        self._init()

    def _init(self) -> None:
        for table in (self.item, self.token, self.kind, self.gap, self.position):
            nn.init.normal_(table.weight, 0.0, 0.02)
            if table.padding_idx is not None:
                with torch.no_grad():
                    table.weight[table.padding_idx].zero_()
        nn.init.zeros_(self.item_bias.weight)

    def item_vectors(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """(...) item rows -> (..., d): id plus content; every row (items + 1, d) if None."""
        if items is None:
            return self.item.weight + masked_mean(self.token, self.item_tokens)
        flat = items.reshape(-1)
        vectors = self.item(flat) + masked_mean(self.token, self.item_tokens[flat])
        return vectors.reshape(*items.shape, -1)

    def states(self, x: Tokens, vectors: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L) right-padded tokens -> (B, L, d); state j attends to tokens 0..j. ``vectors``:
        ``item_vectors()`` computed once (an export folds it into a constant table)."""
        length = x.item.shape[1]
        positions = torch.arange(length, device=x.item.device)
        items = self.item_vectors(x.item) if vectors is None else vectors[x.item]
        h = items + self.kind(x.kind) + self.gap(x.gap) + self.position(positions)
        h = self.dropout(h)
        if isinstance(self.blocks, nn.GRU):
            out: torch.Tensor = self.norm(self.blocks(h)[0])
            return out
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=h.device), diagonal=1)
        out = self.norm(self.blocks(h, mask=causal))
        return out

    def last_state(self, x: Tokens, vectors: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L) right-padded tokens -> (B, d) the state of each row's last real token (of its
        first position if it has none)."""
        last = ((x.item > 0).sum(dim=1) - 1).clamp(min=0)
        return self.states(x, vectors)[torch.arange(last.shape[0]), last]

    def click_logits(self, states: torch.Tensor) -> torch.Tensor:
        """(..., d) states -> (..., items + 1) next-click logits (padding row included; mask it)."""
        out: torch.Tensor = states @ self.item_vectors().T + self.item_bias.weight.T
        return out

    def conversion_logit(self, states: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """(N, d) states, (N,) clicked item rows -> (N,) logit of P(conversion | click)."""
        v = self.item_vectors(items)
        out: torch.Tensor = self.conversion(torch.cat([states, v, states * v], dim=-1)).squeeze(-1)
        return out
