"""Exponentially decayed event counters with several half-lives, as dense arrays (forward decay).

Forward decay (Cormode et al., ICDE 2009): an event at ``t_k`` adds ``exp(r_h * (t_k - t_ref))`` to
row h; the decayed count at ``t`` is ``stored * exp(-r_h * (t - t_ref))`` with ``r_h = ln 2 / half_life_h``.
Updates are O(h), and reading any set of keys is one vectorised product. When the exponent
grows large the whole array is rebased to a new ``t_ref`` (exact up to rounding).
Shape: ``values`` is (h, capacity), indexed by dense key.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from stream.state.serial import pack_array, unpack_array

_REBASE_EXPONENT = 300.0  # e^300 ~ 1e130: far from float64 overflow, rebased long before


class DecayedCounters:
    __slots__ = ("half_lives", "rates", "t_ref", "values")

    def __init__(self, half_lives_s: list[float]) -> None:
        self.half_lives = list(half_lives_s)
        self.rates = np.array([math.log(2) / h for h in self.half_lives])
        self.t_ref: float | None = None
        self.values = np.zeros((len(self.half_lives), 64))

    def add(self, key: int, ts_s: float, amount: float = 1.0) -> None:
        if self.t_ref is None:
            self.t_ref = ts_s
        exponent = self.rates * (ts_s - self.t_ref)
        if exponent[0] > _REBASE_EXPONENT:
            self.values *= np.exp(-exponent)[:, None]
            self.t_ref = ts_s
            exponent = np.zeros_like(exponent)
        if key >= self.values.shape[1]:
            grow = max(key + 1 - self.values.shape[1], self.values.shape[1])
            self.values = np.hstack([self.values, np.zeros((len(self.rates), grow))])
        self.values[:, key] += amount * np.exp(exponent)

    def get_many(self, keys: np.ndarray, ts_s: float) -> np.ndarray:
        """(m,) keys -> (h, m) decayed counts at ``ts_s`` (zeros for unknown keys)."""
        keys = np.asarray(keys, dtype=np.int64)
        out = np.zeros((len(self.rates), len(keys)))
        if self.t_ref is None:
            return out
        known = keys < self.values.shape[1]
        out[:, known] = self.values[:, keys[known]] * np.exp(-self.rates * (ts_s - self.t_ref))[:, None]
        return out

    def get(self, key: int, ts_s: float) -> np.ndarray:
        """(h,) decayed counts of one key."""
        return self.get_many(np.array([key]), ts_s)[:, 0]

    def __len__(self) -> int:
        return int(np.count_nonzero(self.values[-1]))

    def to_state(self) -> dict[str, Any]:
        return {"half_lives": self.half_lives, "t_ref": self.t_ref, "values": pack_array(self.values)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> DecayedCounters:
        counters = cls(state["half_lives"])
        counters.t_ref = state["t_ref"]
        counters.values = unpack_array(state["values"])
        return counters
