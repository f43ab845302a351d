"""Per-partition feature state: everything the learners read about users and items.

One :class:`FeatureState` per Kafka partition. Users live in exactly one partition (events are keyed
by user), so user-side state here is complete. Item-side state (popularity, co-visitation, CTR) is
built from this partition's events only: an approximation of the global view whose cost is measured
by ``streamrec eval prequential --partitions N`` (docs/explanation/design.md, "Where state lives").
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
import numpy as np
from numpy.typing import NDArray

from stream.config import StateConfig
from stream.events import EVENT_TYPES, Event
from stream.state.counters import DecayedCounters
from stream.state.covisitation import CoVisitation
from stream.state.exposure import ExposureEvidence
from stream.state.ids import IdIndex
from stream.state.tokens import UserTokens

# Beta prior for CTR estimates: a new item starts at 1/20 and moves with evidence.
CTR_PRIOR_CLICKS = 1.0
CTR_PRIOR_IMPRESSIONS = 20.0


class Interaction(msgspec.Struct, frozen=True, gc=False):
    """An event resolved against the state: dense ids and seconds (untracked by the cyclic GC)."""

    user: int
    item: int
    type: str
    ts_s: float
    position: int
    event: Event


class FeatureState:
    def __init__(self, cfg: StateConfig, exclude_seen: bool = True) -> None:
        self.cfg = cfg
        self.exclude_seen = exclude_seen  # the served rule: see excluded_items
        self.users = IdIndex()
        self.items = IdIndex()
        self.categories = IdIndex()
        self.item_category: list[int] = []  # -1 where unknown
        self._category_array: NDArray[np.int64] | None = None
        self.recent: dict[int, list[int]] = {}  # newest first, at most cfg.recent_items
        self.seen: dict[int, dict[int, None]] = {}  # ordered set of clicked items, bounded
        self.item_counters = {t: DecayedCounters(cfg.half_lives_s) for t in EVENT_TYPES}
        self.user_categories: dict[int, dict[int, float]] = {}  # clicks per category
        self.user_category_totals: dict[int, float] = {}
        self.covis = CoVisitation(cfg.covis_neighbours, cfg.covis_window)
        self.exposure = ExposureEvidence(cfg.shown_per_user, cfg.shown_decay)
        self.tokens = UserTokens(cfg.sequence_tokens)
        self.max_ts_ms = 0
        self.version = 0  # bumped by every update; lets readers memoise derived views

    # -- reading -------------------------------------------------------------------------------

    @property
    def n_items(self) -> int:
        return len(self.items.keys)

    @property
    def has_impressions(self) -> bool:
        """Whether this partition's log carries impressions (real negatives) at all."""
        return self.item_counters["impression"].t_ref is not None

    def categories_of(self, items: NDArray[np.intp]) -> NDArray[np.int64]:
        """(m,) -> (m,) each item's category index, -1 where unknown; a numpy copy of
        ``item_category`` is kept until a category is set or the catalogue grows."""
        array = self._category_array
        if array is None or len(array) != len(self.item_category):
            array = self._category_array = np.asarray(self.item_category, dtype=np.int64)
        categories: NDArray[np.int64] = array[items]
        return categories

    def recent_items(self, user: int) -> list[int]:
        return self.recent.get(user, [])

    def seen_items(self, user: int) -> list[int]:
        return list(self.seen.get(user, ()))

    def excluded_items(self, user: int) -> list[int]:
        """Items never recommended to ``user``: the served rule that recommendations, serving
        candidates and the prequential figures share. Seen items (the user's clicked items, at most
        ``max_seen_per_user``) unless ``serving.exclude_seen`` is off for re-consumption domains."""
        return self.seen_items(user) if self.exclude_seen else []

    def item_ctr(self, items: NDArray[np.intp], ts_s: float, horizon: int = -1) -> NDArray[np.float64]:
        """(m,) -> (m,) Beta-smoothed click-through rates over half-life ``horizon`` (default longest)."""
        clicks = self.item_counters["click"].get_row(items, ts_s, horizon)
        shown = self.item_counters["impression"].get_row(items, ts_s, horizon)
        ctr: NDArray[np.float64] = (clicks + CTR_PRIOR_CLICKS) / (np.maximum(shown, clicks) + CTR_PRIOR_IMPRESSIONS)
        return ctr

    def others_impressions(
        self, user: int | None, items: NDArray[np.intp], ts_s: float, horizon: int
    ) -> NDArray[np.float64]:
        """(m,) decayed impressions of the (ascending) ``items``, less ``user``'s open slate: a ranking
        made for the visit under test must not know what that visit shows (the visit rule of
        ``stream.state.exposure``), while everyone else's impressions so far are fair evidence."""
        counters = self.item_counters["impression"]
        counts: NDArray[np.float64] = counters.get_row(items, ts_s, horizon)
        rate = counters.rates[horizon]
        for item, shown_at in self.exposure.open_impressions(user):
            at = int(np.searchsorted(items, item))
            if at < len(items) and items[at] == item:
                counts[at] = max(counts[at] - math.exp(-rate * (ts_s - shown_at)), 0.0)
        return counts

    def others_impressions_one(self, user: int, item: int, ts_s: float, horizon: int) -> float:
        """``others_impressions`` of one item."""
        counters = self.item_counters["impression"]
        count = counters.get_one(item, ts_s, horizon)
        rate = counters.rates[horizon]
        for shown, shown_at in self.exposure.open_impressions(user):
            if shown == item:
                count -= math.exp(-rate * (ts_s - shown_at))
        return max(count, 0.0)

    def item_ctr_one(self, item: int, ts_s: float, horizon: int = -1) -> float:
        clicks = self.item_counters["click"].get_one(item, ts_s, horizon)
        shown = self.item_counters["impression"].get_one(item, ts_s, horizon)
        return (clicks + CTR_PRIOR_CLICKS) / (max(shown, clicks) + CTR_PRIOR_IMPRESSIONS)

    def category_affinity_one(self, user: int, item: int) -> float:
        counts = self.user_categories.get(user)
        cat = self.item_category[item]
        if not counts or cat < 0:
            return 0.0
        return counts.get(cat, 0.0) / self.user_category_totals[user]

    def category_affinity(self, user: int, items: np.ndarray) -> np.ndarray:
        """(m,) -> (m,) share of the user's clicks that went to each item's category."""
        counts = self.user_categories.get(user)
        if not counts:
            return np.zeros(len(items))
        categories = self.categories_of(items)
        shares = np.zeros(max(int(categories.max(initial=-1)), max(counts)) + 2)  # the last: unknown (-1)
        shares[list(counts)] = list(counts.values())
        shares /= self.user_category_totals[user]
        out: np.ndarray = shares[categories]
        return out

    # -- writing -------------------------------------------------------------------------------

    def resolve(self, event: Event) -> Interaction:
        """Assign dense ids (registering new users/items and item content) without learning anything."""
        user = self.users.add(event.user_id)
        item = self.items.add(event.item_id)
        if item == len(self.item_category):
            self.item_category.append(-1)
        if event.item is not None and event.item.category and self.item_category[item] < 0:
            self.item_category[item] = self.categories.add(event.item.category)
            self._category_array = None
        context = event.context
        position = context.position if context is not None and context.position is not None else -1
        return Interaction(user, item, event.type, event.ts / 1000.0, position, event)

    def update(self, x: Interaction) -> None:
        """Fold one interaction into the state (call after the learners were tested on it)."""
        event, kind = x.event, x.type
        if event.ts > self.max_ts_ms:
            self.max_ts_ms = event.ts
        self.version += 1
        self.item_counters[kind].add(x.item, x.ts_s)
        if self.cfg.sequence_tokens:
            self.tokens.add(x.user, x.item, kind, event.ts)
        if kind == "impression" or kind == "click":
            self.exposure.add(x.user, x.item, self.item_category[x.item], event)
        if kind != "click":
            return
        recent = self.recent.setdefault(x.user, [])
        self.covis.add(x.item, recent)
        if x.item in recent:
            recent.remove(x.item)
        recent.insert(0, x.item)
        del recent[self.cfg.recent_items :]
        seen = self.seen.setdefault(x.user, {})
        seen[x.item] = None
        if len(seen) > self.cfg.max_seen_per_user:
            del seen[next(iter(seen))]
        cat = self.item_category[x.item]
        if cat >= 0:
            counts = self.user_categories.setdefault(x.user, {})
            counts[cat] = counts.get(cat, 0.0) + 1.0
            self.user_category_totals[x.user] = self.user_category_totals.get(x.user, 0.0) + 1.0

    # -- snapshots -----------------------------------------------------------------------------

    def sizes(self) -> dict[str, int]:
        return {"users": len(self.users), "items": len(self.items), "covis_items": len(self.covis)}

    def to_state(self) -> dict[str, Any]:
        return {
            "users": self.users.to_state(),
            "items": self.items.to_state(),
            "categories": self.categories.to_state(),
            "item_category": self.item_category,
            "recent": [[u, r] for u, r in self.recent.items()],
            "seen": [[u, list(s)] for u, s in self.seen.items()],
            "item_counters": {t: c.to_state() for t, c in self.item_counters.items()},
            "user_categories": [[u, list(c.keys()), list(c.values())] for u, c in self.user_categories.items()],
            "covis": self.covis.to_state(),
            "exposure": self.exposure.to_state(),
            "tokens": self.tokens.to_state(),
            "max_ts_ms": self.max_ts_ms,
            "version": self.version,
        }

    @classmethod
    def from_state(cls, cfg: StateConfig, s: dict[str, Any], exclude_seen: bool = True) -> FeatureState:
        st = cls(cfg, exclude_seen)
        st.users = IdIndex.from_state(s["users"])
        st.items = IdIndex.from_state(s["items"])
        st.categories = IdIndex.from_state(s["categories"])
        st.item_category = list(s["item_category"])
        st.recent = {int(u): list(r) for u, r in s["recent"]}
        st.seen = {int(u): dict.fromkeys(items) for u, items in s["seen"]}
        st.item_counters = {t: DecayedCounters.from_state(c) for t, c in s["item_counters"].items()}
        st.user_categories = {int(u): dict(zip(k, v)) for u, k, v in s["user_categories"]}
        st.user_category_totals = {u: sum(c.values()) for u, c in st.user_categories.items()}
        st.covis = CoVisitation.from_state(s["covis"])
        if "exposure" in s:  # absent from snapshots taken before it was kept
            st.exposure.load_state(s["exposure"])
        if "tokens" in s:  # likewise
            st.tokens.load_state(s["tokens"])
        st.max_ts_ms = s["max_ts_ms"]
        # Kept, not restarted at 0: readers pace rebuilds of derived views by how far it has moved.
        st.version = s.get("version", 0)  # 0: a snapshot from before it was kept
        return st
