"""What each user was shown: the exposure evidence of an impression log.

A non-clicked impression says what a click cannot: the logging policy judged the item worth showing
to this user (it is likely to show it, or items like it, again), and the user did not take it.
Counted per user and item, per user and category, and per category overall, three signals follow
(each a log-rate, so that they add):

* ``shown``: log(1 + impressions of the item to the user) -- the evidence of exposure;
* ``category_exposure``: log of the user's share of impressions in the item's category over
  everyone's share, the user's smoothed towards everyone's (0 for a user without evidence) --
  exposure that reaches items of that category not shown yet, beyond what everyone is shown;
* ``category_lift``: log of the user's click-through rate in the item's category over everyone's,
  Beta-smoothed toward everyone's -- what the user takes among what they are shown.

A request's events count only once the request is over: when the user's next request starts (an
impression of another request; without request ids, of another timestamp). Clicks and conversions
never open a request: they join the user's open one, whatever their timestamp. Everything a visit
shows is all the user can click in it, so counting it at once would tell a test of the visit's own
clicks what was on screen: evidence no ranking made before the visit has. The price: a request
served before the user's next visit starts does not see their last visit yet (one visit less than
the prequential test sees). The same rule holds for everyone's item impression counts, which are
counted as impressions arrive: ``open_impressions`` lists the user's own open slate, so that a
reader can leave it out. Per user at most ``max_items`` items are kept (the least recently shown
are dropped), and a user's counts shrink by ``decay`` per closed request, so what they were shown
long ago can weigh less after their tastes change.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream.events import Event

# Beta priors of the click-through rates: a category starts at 1/20; a user's rate in a category at
# the category's, with the weight of this many impressions.
PRIOR_CLICKS, PRIOR_IMPRESSIONS = 1.0, 20.0
USER_PRIOR_IMPRESSIONS = 10.0
SIGNALS = ("shown", "category_exposure", "category_lift")


def request_key(event: Event) -> str | int:
    """The request an impression belongs to: its request id, else its timestamp."""
    context = event.context
    return (context.request_id or event.ts) if context is not None else event.ts


class ExposureEvidence:
    def __init__(self, max_items: int = 200, decay: float = 1.0) -> None:
        self.max_items = max_items
        self.decay = decay
        self.shown: dict[int, dict[int, float]] = {}  # user -> item -> impressions (least recent first)
        self.user_category: dict[int, dict[int, list[float]]] = {}  # user -> category -> [clicks, impressions]
        self.user_impressions: dict[int, float] = {}
        self.category: dict[int, list[float]] = {}  # category -> [clicks, impressions], everyone's
        self.impressions = 0.0  # everyone's, over every category
        # user -> (request key, [(item, category, clicked, ts_s)]): the open request, not counted yet.
        self.open: dict[int, tuple[str | int, list[tuple[int, int, bool, float]]]] = {}
        # signals_one of the last few (user, item, category): a click's features, tests and exposure
        # ask for the same two items several times between two closed requests, which clear it.
        self._recent_signals: dict[tuple[int, int, int], tuple[float, float, float]] = {}

    def add(self, user: int, item: int, category: int, event: Event) -> None:
        """One impression or click. An impression of another request closes (counts) the user's
        open one; a click joins the open request."""
        current = self.open.get(user)
        kind = event.type
        if kind == "impression":
            context = event.context  # request_key(event), inlined: once per impression
            key = (context.request_id or event.ts) if context is not None else event.ts
            if current is None or current[0] != key:
                if current is not None:
                    self._close(user, current[1])
                current = self.open[user] = (key, [])
        elif current is None:
            current = self.open[user] = (request_key(event), [])
        current[1].append((item, category, kind == "click", event.ts / 1000.0))

    def _close(self, user: int, events: list[tuple[int, int, bool, float]]) -> None:
        """Count a closed request. (Hot path, once per request: the running totals are summed in
        locals, one addition per impression in order as before, so the floats are the same.)"""
        self._recent_signals.clear()
        shown = self.shown.get(user)
        if shown is None:
            shown = self.shown[user] = {}
        cats = self.user_category.get(user)
        if cats is None:
            cats = self.user_category[user] = {}
        if self.decay < 1.0:
            self._shrink(user, shown, cats)
        everyone = self.category
        mine, total, impressions = self.user_impressions.get(user, 0.0), self.impressions, 0
        for item, category, clicked, _ in events:
            if not clicked:
                shown[item] = shown.pop(item, 0.0) + 1.0  # re-inserted: the most recent last
                mine += 1.0
                total += 1.0
                impressions += 1
            if category >= 0:
                column = 0 if clicked else 1
                cell = cats.get(category)
                if cell is None:
                    cell = cats[category] = [0.0, 0.0]
                cell[column] += 1.0
                cell = everyone.get(category)
                if cell is None:
                    cell = everyone[category] = [0.0, 0.0]
                cell[column] += 1.0
        if impressions:
            self.user_impressions[user] = mine
            self.impressions = total
        while len(shown) > self.max_items:
            del shown[next(iter(shown))]

    def _shrink(self, user: int, shown: dict[int, float], cats: dict[int, list[float]]) -> None:
        for i in shown:
            shown[i] *= self.decay
        for cell in cats.values():
            cell[0] *= self.decay
            cell[1] *= self.decay
        if user in self.user_impressions:
            self.user_impressions[user] *= self.decay

    # -- reading -------------------------------------------------------------------------------

    def open_impressions(self, user: int | None) -> list[tuple[int, float]]:
        """(item, ts_s) of each impression of ``user``'s open request: what the visit under test shows."""
        current = self.open.get(user) if user is not None else None
        return [(item, ts) for item, _, clicked, ts in current[1] if not clicked] if current else []

    def signals_one(self, user: int, item: int, category: int) -> tuple[float, float, float]:
        """``shown``, ``category_exposure`` and ``category_lift`` of one item, O(1)."""
        key = (user, item, category)
        recent = self._recent_signals
        signals = recent.get(key)
        if signals is None:
            if len(recent) >= 4:
                recent.clear()
            signals = recent[key] = self._signals_one(user, item, category)
        return signals

    def _signals_one(self, user: int, item: int, category: int) -> tuple[float, float, float]:
        shown = self.shown.get(user)
        s = math.log1p(shown.get(item, 0.0)) if shown else 0.0
        if category < 0 or not self.impressions:
            return s, 0.0, 0.0
        cats = self.user_category.get(user)
        cell = cats.get(category) if cats else None
        if cell is None:
            return s, self._exposure(user, category, 0.0), 0.0
        return s, self._exposure(user, category, cell[1]), self._lift(category, cell)

    def _exposure(self, user: int, category: int, user_shown: float) -> float:
        """log of the user's share of impressions in ``category`` over everyone's; the user's share
        smoothed towards everyone's with ``USER_PRIOR_IMPRESSIONS``; 0 for a category nobody was
        shown (or clicked) yet."""
        everyone = self.category.get(category)
        if everyone is None:
            return 0.0
        share = (everyone[1] + 1.0) / (self.impressions + len(self.category))
        mine = (user_shown + USER_PRIOR_IMPRESSIONS * share) / (
            self.user_impressions.get(user, 0.0) + USER_PRIOR_IMPRESSIONS
        )
        return math.log(mine / share)

    def _lift(self, category: int, cell: list[float]) -> float:
        clicks, shown = self.category[category]
        rate = (clicks + PRIOR_CLICKS) / ((shown if shown > clicks else clicks) + PRIOR_IMPRESSIONS)
        mine = (cell[0] + USER_PRIOR_IMPRESSIONS * rate) / (max(cell[0], cell[1]) + USER_PRIOR_IMPRESSIONS)
        return math.log(mine / rate)

    def signals(
        self, user: int | None, items: NDArray[np.intp], categories: NDArray[np.intp]
    ) -> dict[str, NDArray[np.float64]]:
        """(m,) each of ``SIGNALS`` for ``items`` (ascending) whose categories are ``categories``
        (-1: unknown, neutral). All 0 for an unknown user and on a log without impressions."""
        m = len(items)
        out = {name: np.zeros(m) for name in SIGNALS}
        if user is None or not m or not self.impressions:
            return out
        shown = self.shown.get(user)
        if shown:
            keys = np.fromiter(shown.keys(), dtype=np.int64, count=len(shown))
            at = np.minimum(np.searchsorted(items, keys), m - 1)
            hit = items[at] == keys
            out["shown"][at[hit]] = np.log1p(np.fromiter(shown.values(), dtype=np.float64, count=len(shown))[hit])
        known = categories >= 0
        if known.any():
            exposure, lift = self._per_category(user, int(categories.max()) + 1)
            out["category_exposure"][known] = exposure[categories[known]]
            out["category_lift"][known] = lift[categories[known]]
        return out

    def _per_category(self, user: int, n: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(n,) ``category_exposure`` and (n,) ``category_lift`` of categories 0..n-1 for one user:
        the same values as ``signals_one``, vectorised over categories."""
        ids = np.fromiter(self.category.keys(), dtype=np.int64, count=len(self.category))
        counts = np.array(list(self.category.values()), dtype=np.float64).reshape(-1, 2)
        if len(ids) and ids.max() >= n:
            inside = ids < n
            ids, counts = ids[inside], counts[inside]
        everyone = np.zeros(n)
        everyone[ids] = counts[:, 1]
        known = np.zeros(n, dtype=bool)
        known[ids] = True
        mine = np.zeros(n)
        clicks = np.zeros(n)
        for c, cell in self.user_category.get(user, {}).items():
            if c < n:
                clicks[c], mine[c] = cell
        share = (everyone + 1.0) / (self.impressions + len(self.category))
        user_total = self.user_impressions.get(user, 0.0)
        exposure = np.log((mine + USER_PRIOR_IMPRESSIONS * share) / (user_total + USER_PRIOR_IMPRESSIONS) / share)
        exposure[~known] = 0.0
        rate = np.ones(n)
        rate[ids] = (counts[:, 0] + PRIOR_CLICKS) / (counts.max(axis=1) + PRIOR_IMPRESSIONS)
        user_rate = (clicks + USER_PRIOR_IMPRESSIONS * rate) / (np.maximum(clicks, mine) + USER_PRIOR_IMPRESSIONS)
        lift = np.log(user_rate / rate)
        return exposure, lift

    # -- snapshots -----------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            "shown": [[u, list(d), list(d.values())] for u, d in self.shown.items()],
            "user_category": [[u, [[c, *cell] for c, cell in d.items()]] for u, d in self.user_category.items()],
            "user_impressions": [[u, n] for u, n in self.user_impressions.items()],
            "category": [[c, *cell] for c, cell in self.category.items()],
            "impressions": self.impressions,
            "open": [[u, key, [list(e) for e in events]] for u, (key, events) in self.open.items()],
        }

    def load_state(self, s: dict[str, Any]) -> None:
        self._recent_signals.clear()
        self.shown = {int(u): dict(zip(items, counts)) for u, items, counts in s["shown"]}
        self.user_category = {int(u): {int(c): [k, n] for c, k, n in cells} for u, cells in s["user_category"]}
        self.user_impressions = {int(u): n for u, n in s["user_impressions"]}
        self.category = {int(c): [k, n] for c, k, n in s["category"]}
        self.impressions = s["impressions"]
        self.open = {int(u): (key, [_open_entry(*e) for e in events]) for u, key, events in s["open"]}


def _open_entry(item: int, category: int, clicked: bool, ts_s: float = -math.inf) -> tuple[int, int, bool, float]:
    """One open-request entry of a snapshot; one written before entries kept their time has weight 0
    in ``FeatureState.others_impressions`` (its impressions are not left out)."""
    return int(item), int(category), bool(clicked), float(ts_s)
