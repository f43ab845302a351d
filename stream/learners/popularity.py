"""The baseline every learner must beat: items ranked by clicks so far."""

from __future__ import annotations

from typing import Any

import numpy as np

from stream.learners.base import CatalogueRanker
from stream.state.features import FeatureState, Interaction
from stream.state.serial import pack_array, unpack_array


class Popularity(CatalogueRanker):
    name = "popularity"

    def __init__(self, state: FeatureState) -> None:
        self.state = state
        self.clicks = np.zeros(64, dtype=np.float64)

    def learn_one(self, x: Interaction) -> None:
        if x.type != "click":
            return
        if x.item >= len(self.clicks):
            self.clicks = np.concatenate([self.clicks, np.zeros(max(len(self.clicks), x.item + 1))])
        self.clicks[x.item] += 1.0

    def score_catalogue(self, user: int) -> np.ndarray:
        """(n_items,) click counts."""
        n = self.state.n_items
        if n > len(self.clicks):
            return np.concatenate([self.clicks, np.zeros(n - len(self.clicks))])
        return self.clicks[:n]

    def to_state(self) -> dict[str, Any]:
        return {"clicks": pack_array(self.clicks)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.clicks = unpack_array(state["clicks"])
