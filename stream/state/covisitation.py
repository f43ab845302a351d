"""Item-to-item co-visitation: how often two items are clicked close together by one user.

Each click on ``i`` after recent items ``r_1..r_w`` (newest first) adds ``1 / (1 + distance)`` to
``(r, i)`` and ``(i, r)``. Each item keeps at most ``2 * max_neighbours`` entries and is pruned
back to its ``max_neighbours`` strongest, so memory is O(items * max_neighbours).
"""

from __future__ import annotations

from typing import Any

import numpy as np


class CoVisitation:
    __slots__ = ("max_neighbours", "window", "neighbours", "_arrays")

    def __init__(self, max_neighbours: int, window: int) -> None:
        self.max_neighbours = max_neighbours
        self.window = window
        self.neighbours: dict[int, dict[int, float]] = {}
        # Rows as (idx, weight) arrays for vectorised scoring, dropped whenever the row changes.
        self._arrays: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def add(self, item: int, recent: list[int]) -> None:
        """recent: the user's previous items, newest first. (Hot path: kept free of helper calls.)"""
        neighbours = self.neighbours
        arrays = self._arrays
        arrays.pop(item, None)
        own = neighbours.get(item)
        if own is None:
            own = neighbours[item] = {}
        for distance, other in enumerate(recent[: self.window]):
            if other == item:
                continue
            w = 1.0 / (1 + distance)
            own[other] = own.get(other, 0.0) + w
            row = neighbours.get(other)
            if row is None:
                row = neighbours[other] = {}
            row[item] = row.get(item, 0.0) + w
            arrays.pop(other, None)
            if len(row) > 2 * self.max_neighbours:
                self._prune(other)
        if len(own) > 2 * self.max_neighbours:
            self._prune(item)

    def _prune(self, a: int) -> None:
        keep = sorted(self.neighbours[a].items(), key=lambda kv: (-kv[1], kv[0]))[: self.max_neighbours]
        self.neighbours[a] = dict(keep)

    def of(self, item: int) -> dict[int, float]:
        return self.neighbours.get(item, {})

    def arrays(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        """The row of ``item`` as ((m,) neighbour indices, (m,) weights)."""
        cached = self._arrays.get(item)
        if cached is None:
            row = self.neighbours.get(item, {})
            cached = (np.fromiter(row.keys(), np.int64, len(row)), np.fromiter(row.values(), np.float64, len(row)))
            self._arrays[item] = cached
        return cached

    def __len__(self) -> int:
        return len(self.neighbours)

    def to_state(self) -> dict[str, Any]:
        return {"max_neighbours": self.max_neighbours, "window": self.window,
                "rows": [[a, list(row.keys()), list(row.values())] for a, row in self.neighbours.items()]}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CoVisitation:
        cv = cls(state["max_neighbours"], state["window"])
        cv.neighbours = {int(a): dict(zip(keys, values)) for a, keys, values in state["rows"]}
        return cv
