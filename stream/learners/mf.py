"""Incremental matrix factorisation: ISGD (Vinagre et al., 2014) with sampled negatives.

Per click (u, i) one SGD step towards p_u . q_i = 1, and for each of ``negatives`` items j drawn
uniformly from the catalogue a step towards p_u . q_j = 0 (so the model ranks rather than only
fitting positives). Negatives are derived from a hash of the event id and new rows from a generator
seeded by (seed, row), so the model holds no random-generator state and replays are bit-identical.
New users/items start from N(0, 0.1^2).
Shapes: P (users, f), Q (items, f); scoring is one (items, f) @ (f,) product.
"""

from __future__ import annotations

from typing import Any

import zlib

import numpy as np

from stream.learners.base import CatalogueRanker
from stream.state.features import FeatureState, Interaction
from stream.state.serial import pack_array, unpack_array


class IncrementalMF(CatalogueRanker):
    name = "isgd_mf"

    def __init__(self, state: FeatureState, factors: int = 32, learning_rate: float = 0.05,
                 regularisation: float = 0.01, negatives: int = 2, seed: int = 7) -> None:
        self.state = state
        self.f = factors
        self.lr = learning_rate
        self.reg = regularisation
        self.negatives = negatives
        self.seed = seed
        self.P = np.zeros((0, factors))
        self.Q = np.zeros((0, factors))

    def _grow(self, users: int, items: int) -> None:
        if users > len(self.P):
            extra = max(users - len(self.P), len(self.P) // 2, 64)
            self.P = np.vstack([self.P, self._init_rows(0, len(self.P), extra)])
        if items > len(self.Q):
            extra = max(items - len(self.Q), len(self.Q) // 2, 64)
            self.Q = np.vstack([self.Q, self._init_rows(1, len(self.Q), extra)])

    def _init_rows(self, kind: int, start: int, count: int) -> np.ndarray:
        return np.random.default_rng((self.seed, kind, start)).normal(0, 0.1, (count, self.f))

    def learn_one(self, x: Interaction) -> None:
        """SGD steps on the click, then on each sampled negative (row views: no fancy indexing)."""
        if x.type != "click":
            return
        self._grow(len(self.state.users), len(self.state.items))
        p = self.P[x.user]
        self._step(p, self.Q[x.item], 1.0)
        n_items = self.state.n_items
        if n_items > 1:
            h = zlib.crc32(x.event.event_id.encode())
            for k in range(self.negatives):
                j = (h * 2654435761 + k * 40503) % n_items
                if j != x.item:
                    self._step(p, self.Q[j], 0.0)

    def _step(self, p: np.ndarray, q: np.ndarray, target: float) -> None:
        """In place on the (f,) views p and q: p' = (1-lr*reg) p + lr*err*q, q' likewise with p.

        Written as few numpy calls as possible: at f=32 call overhead, not arithmetic, is the cost.
        """
        g = self.lr * (target - float(p @ q))
        shrink = 1.0 - self.lr * self.reg
        dp = g * q
        q *= shrink
        q += g * p
        p *= shrink
        p += dp

    def score_catalogue(self, user: int) -> np.ndarray:
        """(n_items,) dot products; users and items the model never trained on score 0."""
        n = self.state.n_items
        scores = np.zeros(n)
        if user < len(self.P):
            known = min(n, len(self.Q))
            scores[:known] = self.Q[:known] @ self.P[user]
        return scores

    def score_one(self, user: int, item: int) -> float:
        if user >= len(self.P) or item >= len(self.Q):
            return 0.0
        return float(self.P[user] @ self.Q[item])

    def to_state(self) -> dict[str, Any]:
        return {"P": pack_array(self.P), "Q": pack_array(self.Q)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.P = unpack_array(state["P"])
        self.Q = unpack_array(state["Q"])
