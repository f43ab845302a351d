"""What every online learner offers, in river's house style.

* ``learn_one(x)``: update from one interaction (after it was scored: test-then-learn).
* ``score_catalogue(user) -> (n_items,)``: full-catalogue scores, higher is better. Learners that are
  pointwise by nature (the click model) score a candidate set instead and leave the rest at -inf.
* ``recommend(user, k) -> (<=k,)``: the top-k item indices the served rule allows
  (``FeatureState.excluded_items``: by default, none the user clicked before).
* ``score_one(user, item) -> float``: pointwise, O(1)-ish; ranks like ``score_catalogue``.
* ``to_state()`` / ``from_state()``: plain data for snapshots (no pickle).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from stream.state.features import FeatureState, Interaction


class Learner(Protocol):
    name: str

    def learn_one(self, x: Interaction) -> None: ...

    def score_catalogue(self, user: int) -> np.ndarray: ...

    def recommend(self, user: int, k: int) -> np.ndarray: ...

    def score_one(self, user: int, item: int) -> float: ...

    def to_state(self) -> dict[str, Any]: ...

    def load_state(self, state: dict[str, Any]) -> None: ...


def top_k(scores: np.ndarray, k: int, exclude: list[int]) -> np.ndarray:
    """Indices of the k highest finite scores, best first, skipping ``exclude``.

    scores: (n_items,) float; ties break towards the lower index, so results are deterministic.
    """
    scores = scores.astype(np.float64, copy=True)
    if exclude:
        scores[np.asarray(exclude, dtype=np.int64)] = -np.inf
    finite = int(np.isfinite(scores).sum())
    k = min(k, finite)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    part = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    order = np.lexsort((part, -scores[part]))
    return part[order][:k]


def rank_of(scores: np.ndarray, item: int, exclude: list[int]) -> int | None:
    """0-based rank ``item`` gets in ``top_k(scores, ., exclude)``; None if top_k can never return it.

    The prequential test of the served rule: an item in ``exclude`` (a re-click of a seen item, while
    seen items are excluded), beyond the catalogue or with a non-finite score is a miss, as it is
    for a user served by ``recommend``. One comparison pass instead of a partial sort.
    scores: (n_items,). Ties count against the item when the other index is lower, as in top_k.
    """
    if item >= len(scores) or not np.isfinite(scores[item]) or item in exclude:
        return None
    s = scores[item]
    ahead = int(np.count_nonzero(scores > s)) + int(np.count_nonzero(scores[:item] == s))
    if exclude:
        ex = np.asarray(exclude, dtype=np.int64)
        ahead -= int(np.count_nonzero(scores[ex] > s)) + int(np.count_nonzero((scores[ex] == s) & (ex < item)))
    return ahead


class CatalogueRanker:
    """Mixin: ``recommend`` as top-k of ``score_catalogue`` over the items the served rule allows."""

    state: FeatureState

    def score_catalogue(self, user: int) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def recommend(self, user: int, k: int) -> np.ndarray:
        return top_k(self.score_catalogue(user), k, self.state.excluded_items(user))
