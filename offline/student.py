"""The student: what is served. Small item and content embeddings, the mean of the recent items
instead of attention, one hidden layer; about 1/11 of the teacher's parameters.

Its hidden layer is what the hint loss aligns with the teacher's click expert mixture (through a
projection that exists only in training and is not exported).

Pointwise scoring (``forward`` on rows) is what is exported. For the ranking loss a training step
also scores candidate lists: each list shares one row's user side (demographics, history, bias),
which is computed once per list rather than once per candidate -- the history lookup was most of a
distillation step's cost.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from offline.features import Inputs
from offline.layers import Embeddings, init_weights, masked_mean, mlp


class CandidateLists(NamedTuple):
    row: torch.Tensor  # (P,) the batch row whose user side each list is scored with
    item: torch.Tensor  # (P, C)
    item_tokens: torch.Tensor  # (P, C, T)


class StudentOutput(NamedTuple):
    click_logit: torch.Tensor  # (B,)
    hidden: torch.Tensor  # (B, hidden)
    candidate_logits: torch.Tensor | None = None  # (P, C) when lists were given


class Student(nn.Module):
    def __init__(
        self, n_users: int, n_items: int, n_item_tokens: int, n_user_tokens: int, dim: int = 12, hidden: int = 32
    ) -> None:
        super().__init__()
        self.emb = Embeddings(n_users, n_items, n_item_tokens, n_user_tokens, dim)
        self.body = mlp([5 * dim, hidden])
        self.head = nn.Linear(hidden, 1)
        self.hidden_dim = hidden
        init_weights(self)

    def forward(self, x: Inputs, lists: CandidateLists | None = None) -> StudentOutput:
        demo = self.emb.demographics(x.user_tokens)
        history = masked_mean(self.emb.item, x.recent)
        bias = self.emb.bias(x.user)
        logit, h = self._score(demo, history, bias, self.emb.item_vector(x.item, x.item_tokens))
        if lists is None:
            return StudentOutput(logit, h)
        p, c = lists.item.shape
        items = self.emb.item_vector(lists.item.reshape(p * c), lists.item_tokens.reshape(p * c, -1))

        def per_candidate(t: torch.Tensor) -> torch.Tensor:
            return t[lists.row].repeat_interleave(c, dim=0)

        candidate_logit, _ = self._score(per_candidate(demo), per_candidate(history), per_candidate(bias), items)
        return StudentOutput(logit, h, candidate_logit.reshape(p, c))

    def _score(
        self, demo: torch.Tensor, history: torch.Tensor, bias: torch.Tensor, item: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, d) user side, (N,) bias, (N, d) item -> (N,) click logits, (N, hidden)."""
        h = self.body(torch.cat([demo, item, history, demo * item, history * item], dim=1))
        return self.head(h).squeeze(1) + bias, h
