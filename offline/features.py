"""Rows -> model inputs: the one place that knows the input tensors and their order.

The same five int64 inputs feed the teacher, the student and the exported ONNX graph, so training,
export and serving cannot drift apart:

    user (B,)  item (B,)  recent (B, L)  item_tokens (B, T)  user_tokens (B, A)

Index 0 is padding/unknown everywhere. Content tokens are gathered from the catalogue's tables, so
an item never seen in training is still described by its category and tags (cold start).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from offline.samples import Catalogue, Rows

INPUT_NAMES = ("user", "item", "recent", "item_tokens", "user_tokens")
ITEM_TOKEN_WIDTH = 12
USER_TOKEN_WIDTH = 4


class Inputs(NamedTuple):
    user: torch.Tensor
    item: torch.Tensor
    recent: torch.Tensor
    item_tokens: torch.Tensor
    user_tokens: torch.Tensor


class ContentTables:
    """(n_items + 1, T) and (n_users + 1, A) token tables, built once per catalogue."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.item_tokens = catalogue.item_token_matrix(ITEM_TOKEN_WIDTH)
        self.user_tokens = catalogue.user_token_matrix(USER_TOKEN_WIDTH)

    def arrays(self, user: np.ndarray, item: np.ndarray, recent: np.ndarray) -> dict[str, np.ndarray]:
        """numpy inputs by name (what onnxruntime takes)."""
        return {"user": user, "item": item, "recent": recent,
                "item_tokens": self.item_tokens[item], "user_tokens": self.user_tokens[user]}

    def rows(self, rows: Rows, idx: np.ndarray | slice = slice(None)) -> Inputs:
        return self.tensors(rows.user[idx], rows.item[idx], rows.recent[idx])

    def tensors(self, user: np.ndarray, item: np.ndarray, recent: np.ndarray) -> Inputs:
        a = self.arrays(user, item, recent)
        return Inputs(*(torch.from_numpy(np.ascontiguousarray(a[n])) for n in INPUT_NAMES))

    def catalogue_for(self, user: int, recent: np.ndarray) -> dict[str, np.ndarray]:
        """Every known item (1..n) for one user: the full-catalogue ranking batch."""
        items = np.arange(1, len(self.item_tokens), dtype=np.int64)
        return self.arrays(np.full(len(items), user, dtype=np.int64), items,
                           np.broadcast_to(recent, (len(items), len(recent))))
