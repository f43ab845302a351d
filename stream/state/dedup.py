"""De-duplication by ``event_id`` over the last ``capacity`` ids seen in a partition."""

from __future__ import annotations


class DedupWindow:
    __slots__ = ("capacity", "_ids")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._ids: dict[str, None] = {}  # insertion-ordered: the first key is the oldest

    def seen_before(self, event_id: str) -> bool:
        """True for a duplicate; otherwise remember the id (evicting the oldest past capacity)."""
        if event_id in self._ids:
            return True
        self._ids[event_id] = None
        if len(self._ids) > self.capacity:
            del self._ids[next(iter(self._ids))]
        return False

    def __len__(self) -> int:
        return len(self._ids)

    def to_state(self) -> dict:
        return {"capacity": self.capacity, "ids": list(self._ids)}

    @classmethod
    def from_state(cls, state: dict) -> DedupWindow:
        window = cls(state["capacity"])
        window._ids = dict.fromkeys(state["ids"])
        return window
