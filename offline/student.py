"""The student: what is served. Small id + content embeddings, the mean of the recent items instead
of attention, one hidden layer; ~1/20 of the teacher's parameters.

Its hidden layer is what the hint loss aligns with the teacher's click expert mixture (through a
projection that exists only in training and is not exported).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from offline.features import Inputs
from offline.layers import Embeddings, init_weights, masked_mean, mlp


class StudentOutput(NamedTuple):
    click_logit: torch.Tensor  # (B,)
    hidden: torch.Tensor  # (B, hidden)


class Student(nn.Module):
    def __init__(self, n_users: int, n_items: int, n_item_tokens: int, n_user_tokens: int, dim: int = 8,
                 hidden: int = 32) -> None:
        super().__init__()
        self.emb = Embeddings(n_users, n_items, n_item_tokens, n_user_tokens, dim)
        self.body = mlp([6 * dim, hidden])
        self.head = nn.Linear(hidden, 1)
        self.hidden_dim = hidden
        init_weights(self)

    def forward(self, x: Inputs) -> StudentOutput:
        u, demo = self.emb.user_vectors(x.user, x.user_tokens)
        i = self.emb.item_vector(x.item, x.item_tokens)
        history = masked_mean(self.emb.item(x.recent), x.recent)
        h = self.body(torch.cat([u, demo, i, history, u * i, history * i], dim=1))
        return StudentOutput(self.head(h).squeeze(1), h)
