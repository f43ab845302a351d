"""Each user's latest events as tokens: what a sequence model reads when the user asks.

A token is one impression or click, kept oldest first and at most ``per_user`` per user; a
conversion is no token but marks the user's latest click on its item. Each token is three ids:

* ``item``: the item (the state's dense id here; the offline layer's catalogue row there);
* ``kind``: ``IMPRESSION``, ``CLICK`` or ``CONVERTED`` -- a click whose conversion was logged by the
  time the tokens are read, so a history never holds a conversion from after the moment it serves;
* ``gap``: the time since the user's previous token (kept or not) in log2-second buckets
  (``gap_buckets``; 0: none, or under a second).

``offline.sequences`` builds the same tokens from a whole log for training; the two agree token for
token on the same events (``tests/stream/state/test_tokens.py``).
"""

from __future__ import annotations

import math
from array import array
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

PAD, IMPRESSION, CLICK, CONVERTED = 0, 1, 2, 3
KINDS = 4
GAP_BUCKETS = 34  # 0, then 1 + floor(log2(1 + seconds)) up to 2**32 s
NEVER = int(np.iinfo(np.int64).max)


def gap_buckets(seconds: NDArray[np.float64]) -> NDArray[np.int64]:
    """(n,) seconds since each token's predecessor -> (n,) gap buckets (0 under a second)."""
    buckets = 1 + np.floor(np.log2(1.0 + np.maximum(seconds, 0.0))).astype(np.int64)
    out: NDArray[np.int64] = np.where(seconds >= 1.0, np.minimum(buckets, GAP_BUCKETS - 1), 0)
    return out


def gap_bucket(seconds: float) -> int:
    """``gap_buckets`` of one gap, without numpy's per-call cost (a worker calls it per event)."""
    if seconds < 1.0:
        return 0
    return min(1 + math.floor(math.log2(1.0 + seconds)), GAP_BUCKETS - 1)


FIELDS = 4  # per token: item, kind (IMPRESSION or CLICK; CONVERTED is read, not stored), gap, conversion ms
ITEM, KIND, GAP, CONVERTED_AT = range(FIELDS)


class History(NamedTuple):
    """One user's tokens as read at a moment, oldest first: (n,) item, kind and gap ids."""

    item: NDArray[np.int64]
    kind: NDArray[np.int64]
    gap: NDArray[np.int64]


class UserTokens:
    """Bounded token histories of every user: per user one flat int64 array of ``FIELDS`` values per
    token (32 bytes a token), oldest first, at most ``per_user`` tokens."""

    def __init__(self, per_user: int) -> None:
        self.per_user = per_user
        self._tokens: dict[int, array[int]] = {}
        self._last_ms: dict[int, int] = {}

    def add(self, user: int, item: int, event_type: str, ts_ms: int) -> None:
        """Fold one event in (in time order): an impression or click becomes a token, a conversion
        marks the latest click of ``item`` still kept; other types are ignored."""
        if event_type == "conversion":
            self._mark_conversion(user, item, ts_ms)
            return
        if event_type not in ("impression", "click"):
            return
        previous = self._last_ms.get(user)
        gap = 0 if previous is None else gap_bucket((ts_ms - previous) / 1000.0)
        self._last_ms[user] = ts_ms
        tokens = self._tokens.get(user)
        if tokens is None:
            tokens = self._tokens[user] = array("q")
        tokens.extend((item, CLICK if event_type == "click" else IMPRESSION, gap, NEVER))
        if len(tokens) > FIELDS * self.per_user:
            del tokens[:FIELDS]

    def _mark_conversion(self, user: int, item: int, ts_ms: int) -> None:
        tokens = self._tokens.get(user, array("q"))
        for at in range(len(tokens) - FIELDS, -1, -FIELDS):  # newest first
            if tokens[at + ITEM] == item and tokens[at + KIND] == CLICK:
                if tokens[at + CONVERTED_AT] == NEVER:  # the first conversion counts, as offline
                    tokens[at + CONVERTED_AT] = ts_ms
                return

    def read(self, user: int, now_ms: int) -> History:
        """The user's tokens as read at ``now_ms`` (empty arrays for a user without any)."""
        rows = np.frombuffer(self._tokens.get(user, array("q")), dtype=np.int64).reshape(-1, FIELDS)
        kind = rows[:, KIND]
        read_kind = np.where((kind == CLICK) & (rows[:, CONVERTED_AT] <= now_ms), CONVERTED, kind)
        return History(rows[:, ITEM].copy(), read_kind, rows[:, GAP].copy())

    def __len__(self) -> int:
        return len(self._tokens)

    def to_state(self) -> dict[str, Any]:
        return {"users": [[u, self._last_ms[u], tokens.tolist()] for u, tokens in self._tokens.items()]}

    def load_state(self, s: dict[str, Any]) -> None:
        """Restore a snapshot; a smaller ``per_user`` than the snapshot's keeps each user's newest."""
        keep = FIELDS * self.per_user
        self._tokens = {int(u): array("q", tokens[max(len(tokens) - keep, 0) :]) for u, _, tokens in s["users"]}
        self._last_ms = {int(u): int(last) for u, last, _ in s["users"]}
