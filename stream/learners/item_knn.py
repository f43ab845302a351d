"""Item-neighbourhood recommender over the state's co-visitation graph.

score(i) = sum over the user's recent items r (newest first, weight 1/(1+position)) of
covis(r, i) / sqrt(clicks(r) * clicks(i)) -- cosine-normalised so hubs do not dominate -- plus
popularity * 1e-9 to order items with no co-visitation evidence (new users fall back to popularity).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from stream.learners.base import CatalogueRanker
from stream.learners.popularity import Popularity
from stream.state.features import FeatureState, Interaction


class ItemKNN(CatalogueRanker):
    name = "item_knn"

    def __init__(self, state: FeatureState, popularity: Popularity) -> None:
        self.state = state
        self.popularity = popularity
        self._memo: tuple[int, int, np.ndarray] | None = None  # (user, state version, scores)

    def learn_one(self, x: Interaction) -> None:
        """Nothing of its own: the co-visitation graph is feature state, updated by the processor."""

    def score_catalogue(self, user: int) -> np.ndarray:
        """(n_items,) scores; memoised until the state changes (the click model reuses them)."""
        if self._memo and self._memo[0] == user and self._memo[1] == self.state.version:
            return self._memo[2]
        pop = self.popularity.score_catalogue(user)
        scores = pop * 1e-9
        norm = np.sqrt(pop + 1.0)
        for rank, r in enumerate(self.state.recent_items(user)):
            idx, w = self.state.covis.arrays(r)
            if len(idx):
                scores[idx] += w / (norm[idx] * norm[r] * (1.0 + rank))
        self._memo = (user, self.state.version, scores)
        return scores

    def similarity(self, user: int, item: int) -> float:
        """The co-visitation part of one item's score, in O(recent items)."""
        clicks = self.popularity.clicks
        inv_norm_i = 1.0 / math.sqrt((clicks[item] if item < len(clicks) else 0.0) + 1.0)
        rows = self.state.covis.neighbours
        score = 0.0
        for rank, r in enumerate(self.state.recent_items(user)):
            row = rows.get(r)
            w = row.get(item) if row else None
            if w:
                score += w * inv_norm_i / (math.sqrt(clicks[r] + 1.0) * (1.0 + rank))
        return score

    def score_one(self, user: int, item: int) -> float:
        """Pointwise: the same score as ``score_catalogue(user)[item]``."""
        return self.similarity(user, item) + self.popularity.score_one(user, item) * 1e-9

    def to_state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        pass
