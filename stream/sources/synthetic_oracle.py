"""The synthetic world's ceiling for next-click ranking: how likely each item is to be a user's next
click in a session at a given time, from the world's true preferences and its logging policy.

The synthetic slate is drawn by Gumbel-top-k (half by popularity, half by true affinity), whose
inclusion probabilities have no closed form; they are approximated by ``successive_inclusion``
(``1 - exp(-lambda w)``, the usual approximation for sampling without replacement in proportion
to ``w``), within 0.03 of the generator's own slate frequencies (tests/stream/test_synthetic_oracle.py).
The exposure world (``stream.sources.exposure``) logs with exact propensities and has an
exact oracle; this one is exact in its click probabilities and approximate in its exposure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from stream.sources.exposure import masked_softmax
from stream.sources.synthetic import SyntheticConfig, SyntheticWorld, item_key, synthetic_events, user_key

NEVER = np.iinfo(np.int64).max


def successive_inclusion(weights: NDArray[np.float64], k: int, iterations: int = 50) -> NDArray[np.float64]:
    """(n,) non-negative weights -> (n,) approximate probability that each index is among k drawn
    without replacement in proportion to the weights: ``1 - exp(-lambda w)`` with lambda chosen
    (by bisection) so that the probabilities sum to min(k, #positive)."""
    positive = int((weights > 0).sum())
    k = min(k, positive)
    if k == 0:
        return np.zeros(len(weights))
    if k == positive:
        return (weights > 0).astype(float)
    w: NDArray[np.float64] = weights / weights.max()
    lo, hi = 0.0, 1.0
    while (1.0 - np.exp(-hi * w)).sum() < k:
        hi *= 2.0
    for _ in range(iterations):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if (1.0 - np.exp(-mid * w)).sum() < k else (lo, mid)
    return 1.0 - np.exp(-hi * w)


class SyntheticOracle:
    """Scores for protocol (a)'s oracle ranker: exposure x P(click | shown), per item.

    Built from the config alone: it generates the stream once to learn each session's start and each
    user's first clicks (a few seconds at the defaults).
    """

    def __init__(self, cfg: SyntheticConfig | None = None) -> None:
        self.cfg = cfg = cfg or SyntheticConfig()
        self.world = SyntheticWorld(cfg)
        self._users = {user_key(u): u for u in range(cfg.n_users)}
        self._items = {item_key(i): i for i in range(cfg.n_items)}
        self.first_click_ts = np.full((cfg.n_users, cfg.n_items), NEVER, dtype=np.int64)
        for e in synthetic_events(cfg, self.world):
            if e.type == "click":
                at = (self._users[e.user_id], self._items[e.item_id])
                self.first_click_ts[at] = min(self.first_click_ts[at], e.ts)
        self.session_ts = np.asarray(self.world.session_ts_ms, dtype=np.int64)

    def session_at(self, ts_ms: int) -> int:
        """The session under way at ts: the last one started at or before it (0 before the first)."""
        return max(int(np.searchsorted(self.session_ts, ts_ms, side="right")) - 1, 0)

    def exposure(self, user: int, session: int) -> NDArray[np.float64]:
        """(n_items,) approximate probability that each item is in the user's slate at this session:
        half the slate by popularity, the other half by affinity among the items that half left
        (each item's affinity weight scaled by the chance it was left)."""
        cfg, world = self.cfg, self.world
        start = int(self.session_ts[session]) if len(self.session_ts) else 0
        available = (world.item_arrival <= session) & (self.first_click_ts[user] >= start)
        half = cfg.slate_size // 2
        by_popularity = successive_inclusion(masked_softmax(world.item_bias(session), available), half)
        affinity = world.item_vec @ world.user_vectors(session)[user] * 2.0
        left = masked_softmax(affinity, available) * (1.0 - by_popularity)
        return np.minimum(by_popularity + successive_inclusion(left, cfg.slate_size - half), 1.0)

    def _resolve(self, user_id: str, item_ids: Sequence[str], ts_ms: int) -> tuple[int, np.ndarray, int, np.ndarray]:
        """user, (m,) item indices (absent ones as 0), session, (m,) whether each item exists then."""
        user, session = self._users[user_id], self.session_at(ts_ms)
        get = self._items.get
        items = np.fromiter((get(i, -1) for i in item_ids), dtype=np.int64, count=len(item_ids))
        exists = (items >= 0) & (self.world.item_arrival[np.maximum(items, 0)] <= session)
        return user, np.maximum(items, 0), session, exists

    def click_probability(
        self, user_id: str, item_ids: Sequence[str], ts_ms: int, positions: Sequence[int] | np.ndarray
    ) -> np.ndarray:
        """(m,) true P(click | shown at that position) in the session under way at ts."""
        user, items, session, exists = self._resolve(user_id, item_ids, ts_ms)
        p = self.world.click_probability(np.full(len(items), user), items, session, np.asarray(positions))
        return np.where(exists, p, 0.0)

    def next_click_scores(self, user_id: str, item_ids: Sequence[str], ts_ms: int) -> np.ndarray:
        """(m,) expected clicks on each item in a session of the user at ts: exposure x P(click |
        shown) averaged over the uniformly shuffled display position. -inf for items the world does
        not hold or that have not arrived by then."""
        user, items, session, exists = self._resolve(user_id, item_ids, ts_ms)
        positions = np.arange(self.cfg.slate_size)[:, None]
        click = self.world.click_probability(np.full(len(items), user), items, session, positions).mean(axis=0)
        scores = self.exposure(user, session)[items] * click
        return np.where(exists, scores, -np.inf)
