"""De-duplication by ``event_id`` over the last ``capacity`` ids seen in a partition."""

from __future__ import annotations

from collections import deque
from typing import Any


class DedupWindow:
    __slots__ = ("_ids", "_order", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        # A set to look up, a deque for the order: ~0.23 us per event against an OrderedDict's ~0.36
        # (a plain dict's first key would be evicted in O(deleted slots before it): 24 us per event
        # at 100k ids).
        self._ids: set[str] = set()
        self._order: deque[str] = deque()

    def seen_before(self, event_id: str) -> bool:
        """True for a duplicate; otherwise remember the id (evicting the oldest past capacity)."""
        if event_id in self._ids:
            return True
        self._ids.add(event_id)
        self._order.append(event_id)
        if len(self._order) > self.capacity:
            self._ids.remove(self._order.popleft())
        return False

    def __contains__(self, event_id: str) -> bool:
        """Seen within the window (a look only: nothing is remembered)."""
        return event_id in self._ids

    def __len__(self) -> int:
        return len(self._order)

    def to_state(self) -> dict[str, Any]:
        return {"capacity": self.capacity, "ids": list(self._order)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> DedupWindow:
        window = cls(state["capacity"])
        window._order = deque(state["ids"])
        window._ids = set(window._order)
        return window
