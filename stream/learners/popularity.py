"""The baseline every learner must beat: items ranked by clicks so far."""

from __future__ import annotations

from array import array
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream.learners.base import CatalogueRanker
from stream.state.features import FeatureState, Interaction
from stream.state.serial import pack_array, unpack_array


class Popularity(CatalogueRanker):
    name = "popularity"

    def __init__(self, state: FeatureState) -> None:
        self.state = state
        # array('d'): per-item reads in other learners' hot loops get Python floats (numpy scalar
        # arithmetic costs ~5x more); vector reads copy it into numpy.
        self.clicks = array("d")

    def learn_one(self, x: Interaction) -> None:
        if x.type != "click":
            return
        if x.item >= len(self.clicks):
            self.clicks.extend(array("d", bytes(8 * max(x.item + 1 - len(self.clicks), len(self.clicks), 64))))
        self.clicks[x.item] += 1.0

    def score_catalogue(self, user: int) -> np.ndarray:
        """(n_items,) click counts (a copy)."""
        n = self.state.n_items
        counts = np.zeros(n)
        known = min(n, len(self.clicks))
        counts[:known] = np.frombuffer(self.clicks, dtype=np.float64, count=known)
        return counts

    def score_items(self, user: int | None, items: NDArray[np.intp]) -> NDArray[np.float64]:
        """(m,) click counts of the given items (serving's candidates); 0 for an item not clicked yet."""
        clicks = np.frombuffer(self.clicks, dtype=np.float64)
        counts = np.zeros(len(items))
        known = items < len(clicks)
        counts[known] = clicks[items[known]]
        return counts

    def score_one(self, user: int, item: int) -> float:
        return self.clicks[item] if item < len(self.clicks) else 0.0

    def to_state(self) -> dict[str, Any]:
        return {"clicks": pack_array(np.frombuffer(self.clicks, dtype=np.float64))}

    def load_state(self, state: dict[str, Any]) -> None:
        self.clicks = array("d", unpack_array(state["clicks"]).tobytes())
