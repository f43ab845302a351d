"""Dense integer ids for string keys, so state and learners can use arrays."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class _Dense(dict[str, int]):
    """key -> index; a missing key gets the next index (``order`` holds the keys by index)."""

    __slots__ = ("order",)

    def __init__(self) -> None:
        super().__init__()
        self.order: list[str] = []

    def __missing__(self, key: str) -> int:
        idx = self[key] = len(self.order)
        self.order.append(key)
        return idx


class IdIndex:
    __slots__ = ("_index", "add", "keys")

    def __init__(self) -> None:
        self._index = _Dense()
        self.keys: list[str] = self._index.order
        # Index of a key, assigning the next one on first sight. The dict's own lookup, bound: this
        # runs twice per event, and a Python method around it cost ~0.3 us each.
        self.add: Callable[[str], int] = self._index.__getitem__

    def __len__(self) -> int:
        return len(self.keys)

    def get(self, key: str) -> int | None:
        return self._index.get(key)

    def to_state(self) -> list[str]:
        return list(self.keys)

    @classmethod
    def from_state(cls, keys: list[str]) -> IdIndex:
        index = cls()
        for key in keys:
            index.add(key)
        return index

    def __copy__(self) -> IdIndex:
        # The default copies would keep ``add`` bound to the original's dict.
        return IdIndex.from_state(self.keys)

    def __deepcopy__(self, memo: dict[int, Any]) -> IdIndex:
        return IdIndex.from_state(self.keys)

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, IdIndex) and self.keys == other.keys
