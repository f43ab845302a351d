"""Dense integer ids for string keys, so state and learners can use arrays."""

from __future__ import annotations

from typing import Any


class IdIndex:
    __slots__ = ("_index", "keys")

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self.keys: list[str] = []

    def __len__(self) -> int:
        return len(self.keys)

    def get(self, key: str) -> int | None:
        return self._index.get(key)

    def add(self, key: str) -> int:
        """Index of ``key``, assigning the next one on first sight."""
        idx = self._index.get(key)
        if idx is None:
            idx = self._index[key] = len(self.keys)
            self.keys.append(key)
        return idx

    def to_state(self) -> list[str]:
        return list(self.keys)

    @classmethod
    def from_state(cls, keys: list[str]) -> IdIndex:
        index = cls()
        for key in keys:
            index.add(key)
        return index

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, IdIndex) and self.keys == other.keys
