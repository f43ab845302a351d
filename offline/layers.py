"""Building blocks shared by the teacher and the student (all ONNX-exportable at opset 17)."""

from __future__ import annotations

import math

import torch
from torch import nn


def masked_mean(emb: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """(B, T, d) embeddings of (B, T) ids -> (B, d) mean over the non-padding ids (0 if none).

    Relies on padding rows being zero (``padding_idx=0``: initialised to zero, never updated), so
    the sum needs no (B, T, d) mask product; only the count does.
    """
    count = (ids > 0).sum(1, keepdim=True).clamp(min=1).to(emb.dtype)
    return emb.sum(1) / count


class TargetAttention(nn.Module):
    """Pools the user's recent items by their affinity to the candidate (DIN-style, dot product).

    query (B, d), keys (B, L, d), ids (B, L) -> (B, d). Padding keys get no weight; a user with no
    history pools to zeros (padding embeddings are zero).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.project = nn.Linear(dim, dim, bias=False)
        self.scale = 1.0 / math.sqrt(dim)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        scores = torch.einsum("bld,bd->bl", keys, self.project(query)) * self.scale
        scores = scores.masked_fill(ids == 0, -1e9)
        return torch.einsum("bl,bld->bd", torch.softmax(scores, dim=1), keys)


class Embeddings(nn.Module):
    """The id and content tables of one model: users, items, item tokens, user tokens (row 0 of each
    is padding/unknown and stays zero). Teacher and student share this layout."""

    def __init__(self, n_users: int, n_items: int, n_item_tokens: int, n_user_tokens: int, dim: int) -> None:
        super().__init__()
        self.user = nn.Embedding(n_users, dim, padding_idx=0)
        self.item = nn.Embedding(n_items, dim, padding_idx=0)
        self.item_token = nn.Embedding(n_item_tokens, dim, padding_idx=0)
        self.user_token = nn.Embedding(n_user_tokens, dim, padding_idx=0)

    def user_vectors(self, user: torch.Tensor, user_tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,), (B, A) -> the user's id vector and demographics vector, each (B, d)."""
        return self.user(user), masked_mean(self.user_token(user_tokens), user_tokens)

    def item_vector(self, item: torch.Tensor, item_tokens: torch.Tensor) -> torch.Tensor:
        """(B,), (B, T) -> (B, d): id plus content, so unseen ids still carry their content."""
        return self.item(item) + masked_mean(self.item_token(item_tokens), item_tokens)


def mlp(sizes: list[int], dropout: float = 0.0) -> nn.Sequential:
    """Linear + ReLU (+ dropout) per step; the last layer is followed by ReLU too (a hidden block)."""
    layers: list[nn.Module] = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def init_weights(module: nn.Module, embedding_std: float = 0.05) -> None:
    """He (Kaiming) init for layers followed by ReLU, Xavier for the rest, small normal embeddings.

    Why: ReLU halves the variance of what passes, so He keeps activations at a stable scale through
    the experts; gates, heads and the attention projection are linear into a softmax or sigmoid,
    where Xavier's fan-in/fan-out balance fits. Padding rows stay exactly zero.
    """
    relu_inputs = set()
    for seq in module.modules():
        if isinstance(seq, nn.Sequential):
            kids = list(seq)
            relu_inputs |= {id(a) for a, b in zip(kids, kids[1:]) if isinstance(a, nn.Linear) and isinstance(b, nn.ReLU)}
    for m in module.modules():
        if isinstance(m, nn.Linear):
            if id(m) in relu_inputs:
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
            else:
                nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, embedding_std)
            if m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
