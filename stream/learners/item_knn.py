"""Item-neighbourhood recommender over the state's co-visitation graph.

score(i) = sum over the user's recent items r (newest first, weight 1/(1+position)) of
covis(r, i) / sqrt(clicks(r) * clicks(i)) -- cosine-normalised so hubs do not dominate -- plus
popularity * 1e-9 to order items with no co-visitation evidence (new users fall back to popularity).
"""

from __future__ import annotations

import math
from array import array
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
        self._last_similarity: tuple[tuple[int, int, int] | None, float] = (None, 0.0)

    def learn_one(self, x: Interaction) -> None:
        """Nothing of its own: the co-visitation graph is feature state, updated by the processor."""

    def score_catalogue(self, user: int) -> np.ndarray:
        """(n_items,) scores; memoised until the state changes (the click model reuses them)."""
        if self._memo and self._memo[0] == user and self._memo[1] == self.state.version:
            return self._memo[2]
        pop = self.popularity.score_catalogue(user)
        scores = pop * 1e-9
        pairs = self._neighbour_weights(user)
        if pairs is not None:  # summed per item over the whole catalogue: no np.unique (a sort) needed
            scores += np.bincount(pairs[0], pairs[1], minlength=len(scores))[: len(scores)]
        self._memo = (user, self.state.version, scores)
        return scores

    def neighbour_scores(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        """The co-visitation part of the score, only where it is non-zero: (m,) items (ascending)
        and their (m,) scores. O(recent items x neighbours), independent of the catalogue size,
        which is what candidate generation over a large catalogue needs."""
        pairs = self._neighbour_weights(user)
        if pairs is None:
            return np.empty(0, dtype=np.int64), np.empty(0)
        items, inverse = np.unique(pairs[0], return_inverse=True)
        return items, np.bincount(inverse, pairs[1], minlength=len(items))

    def _neighbour_weights(self, user: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Every (neighbour, weighted co-visitation) pair of the user's recent items' rows, in row
        order (None without any): summing them per neighbour gives the co-visitation scores."""
        recent = self.state.recent_items(user)
        covis = self.state.covis
        # Concatenate the recent items' rows as arrays (memcpy), then one vectorised scatter-add.
        idx, w = array("q"), array("d")
        lengths = []
        for r in recent:  # every recent item was clicked, so it has a row
            row_idx, row_w = covis.row(r)
            idx += row_idx
            w += row_w
            lengths.append(len(row_idx))
        if not len(idx):
            return None
        clicks = np.frombuffer(self.popularity.clicks, dtype=np.float64)
        recent_norm = np.sqrt(clicks[recent] + 1.0)
        row_scale = np.repeat(1.0 / (recent_norm * np.arange(1.0, len(recent) + 1.0)), lengths)
        idx_np = np.frombuffer(idx, dtype=np.int64)
        # Every neighbour was clicked, so it lies inside the click counts.
        return idx_np, np.frombuffer(w, dtype=np.float64) * row_scale / np.sqrt(clicks[idx_np] + 1.0)

    def similarity(self, user: int, item: int) -> float:
        """The co-visitation part of one item's score, in O(recent items); memoised for the last
        (user, item, state version), since a click's test and its features ask twice."""
        key = (user, item, self.state.version)
        if self._last_similarity[0] == key:
            return self._last_similarity[1]
        clicks = self.popularity.clicks
        slots, weights = self.state.covis.slots, self.state.covis.weights
        inv_norm_i = 1.0 / math.sqrt((clicks[item] if item < len(clicks) else 0.0) + 1.0)
        score = 0.0
        for rank, r in enumerate(self.state.recent_items(user)):
            row = slots[r]
            s = row.get(item) if row is not None else None  # every recent item was clicked: a row
            if s is not None:
                score += weights[r][s] * inv_norm_i / (math.sqrt(clicks[r] + 1.0) * (1.0 + rank))  # type: ignore[index]
        self._last_similarity = (key, score)
        return score

    def score_one(self, user: int, item: int) -> float:
        """Pointwise: the same score as ``score_catalogue(user)[item]``."""
        return self.similarity(user, item) + self.popularity.score_one(user, item) * 1e-9

    def to_state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        pass
