"""Item-to-item co-visitation: how often two items are clicked close together by one user.

Each click on ``i`` after recent items ``r_1..r_w`` (newest first) adds ``1 / (1 + distance)`` to
``(r, i)`` and ``(i, r)``. Each item keeps at most ``2 * max_neighbours`` entries and is pruned
back to its ``max_neighbours`` strongest, so memory is O(items * max_neighbours).

Layout: item ids are dense, so rows live in lists indexed by item. A row is a ``slot`` dict
(neighbour -> position) beside growable ``array('q')`` neighbours and ``array('d')`` weights:
scalar updates run at Python-float speed, and item-kNN scoring concatenates rows with memcpy
instead of rebuilding arrays from a dict after every change (which cost ~0.5 ms per full-catalogue
ranking), while pointwise reads stay two dict lookups.
"""

from __future__ import annotations

from array import array
from typing import Any


class CoVisitation:
    __slots__ = ("_distance_weights", "max_neighbours", "neighbours", "slots", "weights", "window")

    def __init__(self, max_neighbours: int, window: int) -> None:
        self.max_neighbours = max_neighbours
        self.window = window
        # Per item (None until the item is first clicked): neighbour -> slot, and the slot arrays.
        self.slots: list[dict[int, int] | None] = []
        self.neighbours: list[array[int] | None] = []  # array('q')
        self.weights: list[array[float] | None] = []  # array('d')
        self._distance_weights = [1.0 / (1 + d) for d in range(window)]

    def _ensure_row(self, item: int) -> tuple[dict[int, int], array[int], array[float]]:
        if item >= len(self.slots):
            grow = item + 1 - len(self.slots)
            self.slots.extend([None] * grow)
            self.neighbours.extend([None] * grow)
            self.weights.extend([None] * grow)
        own_slots, idx, w = self.slots[item], self.neighbours[item], self.weights[item]
        if own_slots is None or idx is None or w is None:
            own_slots, idx, w = {}, array("q"), array("d")
            self.slots[item], self.neighbours[item], self.weights[item] = own_slots, idx, w
        return own_slots, idx, w

    def row(self, item: int) -> tuple[array[int], array[float]]:
        """The neighbours and weights of an item that has been clicked (it has a row)."""
        idx, w = self.neighbours[item], self.weights[item]
        if idx is None or w is None:
            raise KeyError(f"item {item} has no co-visitation row: it was never clicked")
        return idx, w

    def add(self, item: int, recent: list[int]) -> None:
        """recent: the user's previous items, newest first. (Hot path: kept free of helper calls.)"""
        own_slots, own_idx, own_w = self._ensure_row(item)
        slots, neighbours, weights = self.slots, self.neighbours, self.weights
        limit = 2 * self.max_neighbours
        for other, w in zip(recent, self._distance_weights):  # zip stops at the window
            if other == item:
                continue
            s = own_slots.get(other)
            if s is None:
                own_slots[other] = len(own_idx)
                own_idx.append(other)
                own_w.append(w)
            else:
                own_w[s] += w
            row_slots = slots[other] if other < len(slots) else None
            if row_slots is None:  # only when ``recent`` holds items never clicked here
                row_slots = self._ensure_row(other)[0]
            row_idx, row_w = neighbours[other], weights[other]
            assert row_idx is not None and row_w is not None  # a row's three parts come and go together
            s = row_slots.get(item)
            if s is None:
                row_slots[item] = len(row_slots)
                row_idx.append(item)
                row_w.append(w)
                if len(row_slots) > limit:
                    self._prune(other)
            else:
                row_w[s] += w
        if len(own_slots) > limit:
            self._prune(item)

    def _prune(self, a: int) -> None:
        keep = sorted(zip(*self.row(a)), key=lambda kv: (-kv[1], kv[0]))
        self._set_row(a, keep[: self.max_neighbours])

    def _set_row(self, a: int, pairs: list[tuple[int, float]]) -> None:
        self._ensure_row(a)
        self.slots[a] = {b: s for s, (b, _) in enumerate(pairs)}
        self.neighbours[a] = array("q", [b for b, _ in pairs])
        self.weights[a] = array("d", [w for _, w in pairs])

    def of(self, item: int) -> dict[int, float]:
        """The row of ``item`` as {neighbour: weight} (a copy; for tests and inspection)."""
        if item >= len(self.slots) or self.slots[item] is None:
            return {}
        return dict(zip(*self.row(item)))

    def __len__(self) -> int:
        return sum(1 for row in self.slots if row is not None)

    def to_state(self) -> dict[str, Any]:
        return {
            "max_neighbours": self.max_neighbours,
            "window": self.window,
            "rows": [
                [a, *(part.tolist() for part in self.row(a))] for a, row in enumerate(self.slots) if row is not None
            ],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CoVisitation:
        cv = cls(state["max_neighbours"], state["window"])
        for a, keys, values in state["rows"]:
            cv._set_row(int(a), list(zip(keys, values)))
        return cv
