"""Candidate generation: a few hundred items worth ranking, out of the whole catalogue.

Sources, each capped by ``serving.*_candidates``:

* ``covis``    -- co-visitation neighbours of the user's recent items (item-kNN's evidence), by score;
* ``mf``       -- nearest items by the online factorisation, b_i + p_u . q_i (users with a factor row),
  searched among the items with a click (the ``mf_search_items`` most clicked, so that its cost is
  bounded), in a float32 copy of their factors taken with the item-side lists. An item nobody
  clicked has no positive evidence in the factorisation: its row is its random start or was only
  pushed down as a sampled negative, so a high score there is noise. New items reach users through
  ``content`` and ``trending``;
* ``trending`` -- most clicked under the shortest half-life, the same list for every user;
* ``content``  -- popular and newest items of the user's favourite categories: how new users (a click
  or two) and new items (no co-visitation yet) get candidates;
* ``shown``    -- the items the user was shown most (impression logs: ``stream.state.exposure``), what
  the logging policy will likely show again.

Item-side lists (trending, per-category, the item-factor copy) depend on the partition only, so they
are rebuilt every ``item_lists_refresh_s`` (or sooner, when the state has doubled since) and shared
by every request. The served rule's exclusions (the user's seen items unless ``exclude_seen`` is
off: ``FeatureState.excluded_items``) and the configured exclusions are removed. Per-user work is
O(recent items x neighbours) plus one (clicked items, f) @ (f,) product for ``mf``, at most
(``mf_search_items``, f); nothing else scales with the catalogue.
"""

from __future__ import annotations

import time
import weakref
from typing import NamedTuple

import numpy as np

from stream.config import ServingConfig
from stream.learners.item_knn import ItemKNN
from stream.learners.mf import IncrementalMF
from stream.state.features import FeatureState

SOURCES = ("covis", "mf", "trending", "content", "shown")
FAVOURITE_CATEGORIES = 2


class Candidates(NamedTuple):
    items: np.ndarray  # (m,) stream item ids, ascending, none excluded by the served rule
    knn: np.ndarray  # (m,) co-visitation score of each (0 where the user's recent items have none)
    generated: dict[str, int]  # items each source proposed, before de-duplication and exclusion


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the n largest of (k,) scores, unordered; exact.

    On long arrays a full argpartition cost ~0.5 ms per 100,000 scores. Instead: the n-th largest of
    every 16th score is a threshold that at least n scores reach (those n are among them), so only
    the scores at or above it -- about 16 n -- are partitioned.
    """
    if n <= 0 or not len(scores):
        return np.empty(0, dtype=np.int64)
    if n >= len(scores):
        return np.arange(len(scores))
    if len(scores) >= 64 * n:
        sample = scores[::16]
        threshold = np.partition(sample, len(sample) - n)[len(sample) - n]
        survivors = np.flatnonzero(scores >= threshold)
        return survivors[np.argpartition(-scores[survivors], n - 1)[:n]] if len(survivors) > n else survivors
    return np.argpartition(-scores, n - 1)[:n]


def _most_shown(state: FeatureState, user: int, dropped: np.ndarray, n: int) -> np.ndarray:
    """Up to n of the items ``user`` was shown most, none of ``dropped``."""
    shown = state.exposure.shown.get(user)
    if not shown or not n:
        return np.empty(0, dtype=np.int64)
    items = np.fromiter(shown.keys(), dtype=np.int64, count=len(shown))
    counts = np.fromiter(shown.values(), dtype=np.float64, count=len(shown))
    allowed = ~np.isin(items, dropped)
    most: np.ndarray = items[allowed][_top(counts[allowed], n)]
    return most


class ItemLists:
    """One partition's item-side candidate lists, rebuilt when stale."""

    def __init__(self) -> None:
        self.built_at = -np.inf
        self.version = -1
        self.trending = np.empty(0, dtype=np.int64)
        self.by_category: dict[int, np.ndarray] = {}  # category -> popular items, then newest, no repeats
        self.excluded = np.empty(0, dtype=np.int64)
        # float32 copies of the MF factors and biases of the clicked items (``mf_items``, ascending):
        # the nearest-item search reads half the bytes (it is memory-bound); exact float64 scores of
        # the chosen candidates come later.
        self.mf_items = np.empty(0, dtype=np.int64)
        self.item_factors = np.zeros((0, 0), dtype=np.float32)
        self.item_bias = np.zeros(0, dtype=np.float32)

    def refresh(self, state: FeatureState, mf: IncrementalMF, cfg: ServingConfig) -> None:
        now = time.monotonic()
        if state.version == self.version:
            return
        # Rebuilt every item_lists_refresh_s, and also whenever the state has doubled its updates
        # since the last build: lists built from a partition's first events (an empty trending list,
        # a few categories) must not serve for a whole interval while thousands of events arrive.
        if now - self.built_at < cfg.item_lists_refresh_s and state.version < 2 * self.version:
            return
        self.version, self.built_at = state.version, now
        n = state.n_items
        counts = state.item_counters["click"].get_many(np.arange(n), state.max_ts_ms / 1000.0)
        self.trending = _top(counts[0], cfg.trending_candidates)
        self.trending = self.trending[counts[0][self.trending] > 0]
        popularity = counts[-1]
        categories = state.categories_of(np.arange(n))
        per_category = max(cfg.content_candidates // FAVOURITE_CATEGORIES, 1)
        order = np.lexsort((-popularity, categories))  # by category, most clicked first
        cats_sorted = categories[order]
        bounds = np.flatnonzero(np.diff(cats_sorted)) + 1
        self.by_category = {}
        for members in np.split(order, bounds):
            cat = int(categories[members[0]]) if len(members) else -1
            if cat < 0:
                continue
            popular = members[: per_category - per_category // 2]
            newest = np.sort(members)[::-1][: per_category // 2]  # dense ids grow with first sight
            self.by_category[cat] = np.unique(np.concatenate([popular, newest]))
        self.excluded = np.array(
            sorted(i for i in map(state.items.get, cfg.exclude_items) if i is not None), dtype=np.int64
        )
        clicked = np.flatnonzero(popularity[: min(n, len(mf.Q))] > 0)
        if len(clicked) > cfg.mf_search_items:  # the most clicked, ascending as the search needs
            clicked = np.sort(clicked[_top(popularity[clicked], cfg.mf_search_items)])
        self.mf_items = clicked
        self.item_factors = mf.Q[self.mf_items].astype(np.float32)
        self.item_bias = mf.b[self.mf_items].astype(np.float32)

    def nearest_by_mf(self, user_factors: np.ndarray, dropped: np.ndarray, n: int) -> np.ndarray:
        """Up to n clicked items by b_i + p_u . q_i for (f,) ``user_factors``, none of ``dropped``."""
        scores = self.item_factors @ user_factors.astype(np.float32) + self.item_bias
        at = np.minimum(np.searchsorted(self.mf_items, dropped), len(self.mf_items) - 1)
        scores[at[self.mf_items[at] == dropped]] = -np.inf
        top = _top(scores, n)
        nearest: np.ndarray = self.mf_items[top[np.isfinite(scores[top])]]  # fewer than n allowed: no excluded ones
        return nearest


class CandidateGenerator:
    def __init__(self, cfg: ServingConfig) -> None:
        self.cfg = cfg
        self._lists: weakref.WeakKeyDictionary[FeatureState, ItemLists] = weakref.WeakKeyDictionary()

    def item_lists(self, state: FeatureState, mf: IncrementalMF) -> ItemLists:
        lists = self._lists.get(state)
        if lists is None:
            lists = self._lists[state] = ItemLists()
        lists.refresh(state, mf, self.cfg)
        return lists

    def generate(
        self, state: FeatureState, knn: ItemKNN, mf: IncrementalMF, user: int | None, exclude: tuple[str, ...] = ()
    ) -> Candidates:
        """Candidates for ``user`` (stream id; None: a user this partition has never seen)."""
        cfg = self.cfg
        lists = self.item_lists(state, mf)
        drop = [lists.excluded]
        if user is not None:
            drop.append(np.asarray(state.excluded_items(user), dtype=np.int64))
        if exclude:
            drop.append(np.array([i for i in map(state.items.get, exclude) if i is not None], dtype=np.int64))
        dropped = np.concatenate(drop)
        proposed = {"trending": lists.trending}
        covis_items, covis_scores = np.empty(0, dtype=np.int64), np.empty(0)
        if user is not None:
            # Per-user sources take their budget from items that can be recommended: the user's own
            # items co-visit each other most, and would otherwise fill the co-visitation budget.
            covis_items, covis_scores = knn.neighbour_scores(user)
            allowed = ~np.isin(covis_items, dropped)
            proposed["covis"] = covis_items[allowed][_top(covis_scores[allowed], cfg.covis_candidates)]
            if user < len(mf.P) and cfg.mf_candidates and len(lists.mf_items):
                proposed["mf"] = lists.nearest_by_mf(mf.P[user], dropped, cfg.mf_candidates)
            favourites = state.user_categories.get(user)
            if favourites and cfg.content_candidates:
                top = sorted(favourites, key=favourites.__getitem__, reverse=True)[:FAVOURITE_CATEGORIES]
                proposed["content"] = np.concatenate([lists.by_category.get(c, np.empty(0, np.int64)) for c in top])
            proposed["shown"] = _most_shown(state, user, dropped, cfg.shown_candidates)
        items = np.unique(np.concatenate(list(proposed.values())).astype(np.int64, copy=False))
        items = items[~np.isin(items, dropped)]
        knn_scores = np.zeros(len(items))
        if len(covis_items):
            at = np.searchsorted(covis_items, items)
            hit = at < len(covis_items)
            hit[hit] = covis_items[at[hit]] == items[hit]
            knn_scores[hit] = covis_scores[at[hit]]
        return Candidates(items, knn_scores, {s: len(v) for s, v in proposed.items()})
