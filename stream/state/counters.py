"""Exponentially decayed event counters with several half-lives per key (forward decay).

Forward decay (Cormode et al., ICDE 2009): an event at ``t_k`` adds ``exp(r_h * (t_k - t_ref))`` to
row h; the decayed count at ``t`` is ``stored * exp(-r_h * (t - t_ref))`` with ``r_h = ln 2 / half_life_h``.
Updates are O(h) scalar operations and reading any set of keys is one vectorised product over a
zero-copy numpy view. When the exponent grows large every row is rebased to a new ``t_ref``.
Rows are ``array('d')``: scalar updates at Python-float speed, growable, viewable by numpy.
"""

from __future__ import annotations

import math
from array import array
from typing import Any

import numpy as np

_REBASE_EXPONENT = 300.0  # e^300 ~ 1e130: far from float64 overflow
_MAX_EXPONENT = 700.0  # reads far before t_ref (very late events) saturate instead of overflowing


class DecayedCounters:
    __slots__ = ("_fastest", "_last", "half_lives", "rates", "rows", "t_ref")

    def __init__(self, half_lives_s: list[float]) -> None:
        self.half_lives = list(half_lives_s)
        self.rates = [math.log(2) / h for h in self.half_lives]
        self._fastest = max(self.rates)
        self.t_ref: float | None = None
        self.rows = [array("d") for _ in self.half_lives]
        self._last: tuple[float, list[float]] = (math.nan, [])  # (ts, weights): events share timestamps

    def add(self, key: int, ts_s: float, amount: float = 1.0) -> None:
        last_ts, weights = self._last
        if ts_s != last_ts:
            weights = self._weights(ts_s)
        try:
            for row, w in zip(self.rows, weights):
                row[key] += amount * w
        except IndexError:  # a new key past the end (rows share one length, so none was updated)
            grow = max(key + 1 - len(self.rows[0]), len(self.rows[0]), 64)
            for row in self.rows:
                row.extend(array("d", bytes(8 * grow)))
            self.add(key, ts_s, amount)

    def _weights(self, ts_s: float) -> list[float]:
        """exp(r_h * (ts - t_ref)) per half-life, rebasing first if the exponent grew too large."""
        if self.t_ref is None:
            self.t_ref = ts_s
        dt = ts_s - self.t_ref
        if self._fastest * dt > _REBASE_EXPONENT:
            for row, rate in zip(self.rows, self.rates):
                np.frombuffer(row, dtype=np.float64)[:] *= math.exp(-rate * dt)
            self.t_ref, dt = ts_s, 0.0
        weights = [math.exp(rate * dt) for rate in self.rates]
        self._last = (ts_s, weights)
        return weights

    def get_one(self, key: int, ts_s: float, horizon: int) -> float:
        """The decayed count of one key for one half-life."""
        if self.t_ref is None or key >= len(self.rows[0]):
            return 0.0
        return self.rows[horizon][key] * math.exp(min(-self.rates[horizon] * (ts_s - self.t_ref), _MAX_EXPONENT))

    def get_many(self, keys: np.ndarray, ts_s: float) -> np.ndarray:
        """(m,) keys -> (h, m) decayed counts at ``ts_s`` (zeros for unknown keys)."""
        keys = np.asarray(keys, dtype=np.int64)
        out = np.zeros((len(self.rates), len(keys)))
        if self.t_ref is not None:
            for h in range(len(self.rates)):
                self._read(h, keys, ts_s, out[h])
        return out

    def get_row(self, keys: np.ndarray, ts_s: float, horizon: int) -> np.ndarray:
        """(m,) keys -> (m,) decayed counts for one half-life: ``get_many(keys, ts_s)[horizon]``
        without reading the others (the catalogue-wide readers need one)."""
        keys = np.asarray(keys, dtype=np.int64)
        out = np.zeros(len(keys))
        if self.t_ref is not None:
            self._read(horizon, keys, ts_s, out)
        return out

    def _read(self, h: int, keys: np.ndarray, ts_s: float, out: np.ndarray) -> None:
        """``out[:] =`` row ``h`` of ``keys`` decayed to ``ts_s``; keys past the rows stay as they are (0).
        When every key is inside the rows (the usual case) no mask is built."""
        assert self.t_ref is not None
        row = np.frombuffer(self.rows[h], dtype=np.float64)
        decay = math.exp(min(-self.rates[h] * (ts_s - self.t_ref), _MAX_EXPONENT))
        if not len(keys) or keys.max() < len(row):
            np.multiply(row[keys], decay, out=out)
        else:
            known = keys < len(row)
            out[known] = row[keys[known]] * decay

    def __len__(self) -> int:
        return sum(1 for v in self.rows[-1] if v)

    def to_state(self) -> dict[str, Any]:
        return {"half_lives": self.half_lives, "t_ref": self.t_ref, "rows": [row.tobytes() for row in self.rows]}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> DecayedCounters:
        counters = cls(state["half_lives"])
        counters.t_ref = state["t_ref"]
        counters.rows = [array("d", blob) for blob in state["rows"]]
        return counters
