"""Exposure-aware next-click ranker: how likely an item is to be seen, times how likely to be taken.

On an impression log a user can only click what they are shown, so the rate at which an item is a
user's next click factors into exposure and choice (docs/explanation/learners.md)::

    log P(next click = i | u) ~ log trend(i) + shown(u, i) + category_exposure(u, c_i) + category_lift(u, c_i)

``trend`` is the item's clicks under the state's shortest half-life (exposure times its click-through
rate, summed over everyone, as it is now); the other three are the user's exposure evidence
(``stream.state.exposure``). Unit weights: each term is a log-rate estimate. The serving blend reads
the terms as separate signals and learns their weights. On a log of clicks alone the user terms are
0 and the ranker is trending.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from stream.learners.base import CatalogueRanker
from stream.state.exposure import SIGNALS as EVIDENCE
from stream.state.features import FeatureState, Interaction

SIGNALS = ("trending", *EVIDENCE)

# Added to the decayed click count before the log: an item nobody clicked lately still ranks by its
# user terms, a few orders of magnitude below one recent click.
TREND_FLOOR = 0.1


class ExposureRanker(CatalogueRanker):
    name = "exposure"

    def __init__(self, state: FeatureState) -> None:
        self.state = state
        self._memo: tuple[tuple[int, int, int], dict[str, NDArray[np.float64]]] | None = None
        self._memo_total: tuple[tuple[int, int, int], NDArray[np.float64]] | None = None

    def learn_one(self, x: Interaction) -> None:
        """Nothing of its own: the exposure evidence and the counters are feature state."""

    def signals(self, user: int | None, items: NDArray[np.intp]) -> dict[str, NDArray[np.float64]]:
        """(m,) each of ``SIGNALS`` (what the ranking adds up) and ``seen`` (the log-rate of
        exposure: the item's impressions under the shortest half-life, less the user's own open slate
        (``FeatureState.others_impressions``), the user's ``shown`` and
        ``category_exposure``) of the (ascending) ``items``."""
        st = self.state
        now = st.max_ts_ms / 1000.0
        trend = st.item_counters["click"].get_row(items, now, 0)
        impressions = st.others_impressions(user, items, now, 0)
        out = {"trending": np.log(trend + TREND_FLOOR), **st.exposure.signals(user, items, st.categories_of(items))}
        out["seen"] = np.log(impressions + TREND_FLOOR) + out["shown"] + out["category_exposure"]
        return out

    def catalogue_signals(self, user: int) -> dict[str, NDArray[np.float64]]:
        """``signals`` of the whole catalogue, memoised until the state changes (the click model's
        candidates and scores reuse them)."""
        key = (user, self.state.version, self.state.n_items)
        memo = self._memo
        if memo is None or memo[0] != key:
            memo = self._memo = (key, self.signals(user, np.arange(self.state.n_items)))
        return memo[1]

    def score_items(self, user: int | None, items: NDArray[np.intp]) -> NDArray[np.float64]:
        signals = self.signals(user, items)
        total: NDArray[np.float64] = sum((signals[name] for name in SIGNALS), start=np.zeros(len(items)))
        return total

    def seen_one(self, user: int, item: int) -> float:
        """``seen`` of one item, O(1)."""
        st = self.state
        shown = st.others_impressions_one(user, item, st.max_ts_ms / 1000.0, 0)
        user_shown, category_exposure, _ = st.exposure.signals_one(user, item, st.item_category[item])
        return math.log(shown + TREND_FLOOR) + user_shown + category_exposure

    def score_catalogue(self, user: int) -> NDArray[np.float64]:
        """Memoised like ``catalogue_signals``: a ranking test asks once, the click model's candidates again."""
        key = (user, self.state.version, self.state.n_items)
        memo = self._memo_total
        if memo is None or memo[0] != key:
            signals = self.catalogue_signals(user)
            total = sum((signals[name] for name in SIGNALS), start=np.zeros(self.state.n_items))
            memo = self._memo_total = (key, total)
        return memo[1]

    def score_one(self, user: int, item: int) -> float:
        st = self.state
        trend = st.item_counters["click"].get_one(item, st.max_ts_ms / 1000.0, 0)
        return math.log(trend + TREND_FLOOR) + sum(st.exposure.signals_one(user, item, st.item_category[item]))

    def to_state(self) -> dict[str, object]:
        return {}

    def load_state(self, state: dict[str, object]) -> None:
        """Stateless: everything it reads is snapshotted with the feature state."""
