"""The teacher: a multi-task (click, conversion) network over shared experts (MMoE, Ma et al. 2018)
with ESMM's factorisation (Ma et al. 2018): p(conversion) = p(click) * p(conversion | click).

Conversions are only observed after clicks, so a conversion-rate head trained on clicked rows alone
sees a biased, tiny sample; ESMM trains p(click) on every row and p(click) * p(cvr) against the
conversion label on every row, so the cvr head learns from the whole space through the shared
experts. ``single_task=True`` drops the click supervision (the multi-task ablation).

Representation of one (user, item) row, every part (B, d):
  user demographics (token mean), item id + item content (token mean), target attention over the
  recent items, and two products (demographics x item, interest x item). The user id adds only a
  bias to the click logit (``Embeddings``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from offline.features import Inputs
from offline.layers import Embeddings, TargetAttention, init_weights, mlp


class TeacherOutput(NamedTuple):
    click_logit: torch.Tensor  # (B,)
    cvr_logit: torch.Tensor  # (B,) p(conversion | click)
    hint: torch.Tensor  # (B, expert_dims[-1]): the click task's gated expert mixture


class Teacher(nn.Module):
    def __init__(
        self,
        n_users: int,
        n_items: int,
        n_item_tokens: int,
        n_user_tokens: int,
        dim: int = 64,
        experts: int = 3,
        expert_dims: tuple[int, ...] = (128, 64),
        tower: int = 32,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.emb = Embeddings(n_users, n_items, n_item_tokens, n_user_tokens, dim)
        self.attention = TargetAttention(dim)
        width = 5 * dim
        self.experts = nn.ModuleList(mlp([width, *expert_dims], dropout) for _ in range(experts))
        self.gates = nn.ModuleList(nn.Linear(width, experts) for _ in range(2))  # click, cvr
        self.towers = nn.ModuleList(nn.Sequential(mlp([expert_dims[-1], tower]), nn.Linear(tower, 1)) for _ in range(2))
        self.hint_dim = expert_dims[-1]
        init_weights(self)

    def encode(self, x: Inputs) -> torch.Tensor:
        """Inputs -> (B, 5d) shared representation."""
        demo = self.emb.demographics(x.user_tokens)
        i = self.emb.item_vector(x.item, x.item_tokens)
        interest = self.attention(i, self.emb.item(x.recent), x.recent)
        return torch.cat([demo, i, interest, demo * i, interest * i], dim=1)

    def forward(self, x: Inputs) -> TeacherOutput:
        h = self.encode(x)
        expert_out = torch.stack([e(h) for e in self.experts], dim=1)  # (B, E, D)
        mixed = [torch.einsum("be,bed->bd", torch.softmax(g(h), dim=1), expert_out) for g in self.gates]
        click, cvr = (tower(m).squeeze(1) for tower, m in zip(self.towers, mixed))
        return TeacherOutput(click + self.emb.bias(x.user), cvr, mixed[0])


class ClickLogit(nn.Module):
    """Export wrapper: the click logit only (what candidates are ranked by)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, user, item, recent, item_tokens, user_tokens):
        return self.model(Inputs(user, item, recent, item_tokens, user_tokens))[0]
