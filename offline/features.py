"""Rows -> model inputs: the one place that knows the input tensors and their order.

The same five int64 inputs feed the teacher, the student and the exported ONNX graph, so training,
export and serving cannot drift apart:

    user (B,)  item (B,)  recent (B, L)  item_tokens (B, T)  user_tokens (B, A)

Index 0 is padding/unknown everywhere. Content tokens are gathered from the catalogue's tables.
Rows and clicks name users and items by catalogue row indices, numbered on after the training
window's for ids first logged later (``offline.samples``); ``ContentTables`` turns those into the
model's inputs exactly as serving does (``serving/model_inputs.py``): index 0 for an id the model
has no row for, a later item's category token as its only content, no demographics for a later user.
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
    """Row index -> model input tables over the catalogue and its later ids, built once per catalogue.

    ``item_tokens`` (n_rows + 1, T) and ``user_tokens`` (n_rows + 1, A): the catalogue's own rows,
    then the later ids' cold rows; ``model_item`` / ``model_user`` (n_rows + 1,): the model index of
    each row (0 for a later id). The exported tables are the catalogue's own part alone.
    """

    def __init__(self, catalogue: Catalogue) -> None:
        later_items, later_users = len(catalogue.later_items) - 1, len(catalogue.later_users) - 1
        self.item_tokens = np.concatenate(
            [catalogue.item_token_matrix(ITEM_TOKEN_WIDTH), catalogue.later_item_token_matrix(ITEM_TOKEN_WIDTH)]
        )
        self.user_tokens = np.concatenate(
            [catalogue.user_token_matrix(USER_TOKEN_WIDTH), np.zeros((later_users, USER_TOKEN_WIDTH), dtype=np.int64)]
        )
        self.model_item = _own_rows_then_zeros(len(catalogue.items), later_items)
        self.model_user = _own_rows_then_zeros(len(catalogue.users), later_users)
        self._own_items, self._own_users = len(catalogue.items), len(catalogue.users)

    @property
    def model_item_tokens(self) -> np.ndarray:
        """(n_model_items, T): the model's own rows, what the manifest exports."""
        return self.item_tokens[: self._own_items]

    @property
    def model_user_tokens(self) -> np.ndarray:
        """(n_model_users, A): the model's own rows, what the manifest exports."""
        return self.user_tokens[: self._own_users]

    def arrays(self, user: np.ndarray, item: np.ndarray, recent: np.ndarray) -> dict[str, np.ndarray]:
        """(B,) user and item rows, (B, L) recent model items -> the model's numpy inputs by name
        (what onnxruntime takes)."""
        return {
            "user": self.model_user[user],
            "item": self.model_item[item],
            "recent": recent,
            "item_tokens": self.item_tokens[item],
            "user_tokens": self.user_tokens[user],
        }

    def rows(self, rows: Rows, idx: np.ndarray | slice = slice(None)) -> Inputs:
        return self.tensors(rows.user[idx], rows.item[idx], rows.recent[idx])

    def tensors(self, user: np.ndarray, item: np.ndarray, recent: np.ndarray) -> Inputs:
        return as_tensors(self.arrays(user, item, recent))

    def catalogue_for(self, user: int, recent: np.ndarray) -> dict[str, np.ndarray]:
        """Every item row (1..n, later items included) for one user: the full-catalogue ranking batch."""
        items = np.arange(1, len(self.item_tokens), dtype=np.int64)
        return self.arrays(
            np.full(len(items), user, dtype=np.int64), items, np.broadcast_to(recent, (len(items), len(recent)))
        )


def as_tensors(arrays: dict[str, np.ndarray]) -> Inputs:
    """The model's numpy inputs by name (``ContentTables.arrays``) -> torch tensors, as they are."""
    return Inputs(*(torch.from_numpy(np.ascontiguousarray(arrays[n])) for n in INPUT_NAMES))


def _own_rows_then_zeros(own: int, later: int) -> np.ndarray:
    """(own + later,) model index per row: the identity over the model's rows, then 0."""
    return np.concatenate([np.arange(own), np.zeros(later, dtype=np.int64)])
