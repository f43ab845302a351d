"""Item-to-item co-visitation: how often two items are clicked close together by one user.

Each click on ``i`` after recent items ``r_1..r_w`` (newest first) adds ``1 / (1 + distance)`` to
``(r, i)`` and ``(i, r)``. Each item keeps at most ``2 * max_neighbours`` entries and is pruned
back to its ``max_neighbours`` strongest, so memory is O(items * max_neighbours).
"""

from __future__ import annotations

from typing import Any


class CoVisitation:
    __slots__ = ("max_neighbours", "window", "neighbours")

    def __init__(self, max_neighbours: int, window: int) -> None:
        self.max_neighbours = max_neighbours
        self.window = window
        self.neighbours: dict[int, dict[int, float]] = {}

    def add(self, item: int, recent: list[int]) -> None:
        """recent: the user's previous items, newest first."""
        for distance, other in enumerate(recent[: self.window]):
            if other == item:
                continue
            w = 1.0 / (1 + distance)
            self._bump(item, other, w)
            self._bump(other, item, w)

    def _bump(self, a: int, b: int, w: float) -> None:
        row = self.neighbours.get(a)
        if row is None:
            row = self.neighbours[a] = {}
        row[b] = row.get(b, 0.0) + w
        if len(row) > 2 * self.max_neighbours:
            keep = sorted(row.items(), key=lambda kv: (-kv[1], kv[0]))[: self.max_neighbours]
            self.neighbours[a] = dict(keep)

    def of(self, item: int) -> dict[int, float]:
        return self.neighbours.get(item, {})

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
