"""An exposure-biased impression log with known propensities and a ground-truth oracle (the ceiling).

Generative model (the latent world is :class:`~stream.sources.synthetic.SyntheticWorld`'s: category
centroids, item vectors ``v_i``, user tastes ``p_u``, Zipf popularity ``b_i``, arrivals and the drift):

* A schedule of ``n_sessions`` visits: each picks an arrived user by activity, at a known timestamp.
  Users and items arrive through the stream; at ``drift_at`` tastes are redrawn and popularity is
  reshuffled, so every truth below depends on whether ``ts`` is before or after the drift.
* The logging policy is a mixture over the items that exist at the visit:
  ``w_i = popularity_share * softmax(popularity_temperature * b_i)
  + (1 - popularity_share) * softmax(affinity_temperature * p_u.v_i)``.
  Inclusion probabilities ``pi_i = min(1, c * w_i)`` with ``c`` set so that ``sum pi_i = slate_size``
  (the cap iterated); Madow's systematic sampling over a random order draws exactly ``slate_size``
  distinct items (fewer only while fewer exist) with marginal inclusion probabilities ``pi_i``,
  shown in a uniformly random order.
* Each shown item is clicked with ``P = sigmoid(click_bias + affinity_scale * p_u.v_i + b_i
  - position_decay * position)``, times ``reclick_propensity`` if the user clicked it before (the
  policy does not exclude clicked items, so re-clicks happen); a click converts with
  ``P = sigmoid(conv_bias + affinity_scale * p_u.v_i)``, its ``value`` the item's price.

Every shown item is an ``impression`` carrying ``context.position``, ``context.request_id`` (one per
visit) and ``context.propensity = pi_i``: the exact probability that the logging policy put this item
in this visit's slate, what inverse-propensity estimates divide by. Its clicks and conversions carry
the same context.

:class:`ExposureOracle` knows all of it. ``next_click_scores`` is ``pi_i * P(click | shown)`` (the
position averaged over the uniform display order): the expected number of clicks on ``i`` in a visit
of the user at ``ts``, the rate at which ``i`` is their next click -- the ranking no learner can beat.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from stream.events import Context, Event, EventType, ItemAttributes
from stream.sources.synthetic import START_TS_MS, SyntheticConfig, SyntheticWorld, item_key, user_key

NEVER = np.iinfo(np.int64).max


class ExposureConfig(SyntheticConfig, kw_only=True, forbid_unknown_fields=True):
    """SyntheticConfig's world (a session is a visit) plus the logging policy, re-consumption and
    prices; click defaults of its own (~8 % CTR, ~60 % conversion). The defaults make ~205k events."""

    n_sessions: int = 18_000
    click_bias: float = -3.0
    conv_bias: float = -1.5
    position_decay: float = 0.1
    popularity_share: float = 0.8
    popularity_temperature: float = 3.0
    affinity_temperature: float = 2.0
    reclick_propensity: float = 0.3
    mean_value: float = 30.0


class Visit(NamedTuple):
    """One visit as generated. items, propensity, clicked, converted, reclicked: (slate,) in display order."""

    number: int
    user: int
    ts_ms: int
    items: np.ndarray
    propensity: np.ndarray
    clicked: np.ndarray
    converted: np.ndarray
    reclicked: np.ndarray


def masked_softmax(logits: NDArray[np.float64], mask: NDArray[np.bool_]) -> NDArray[np.float64]:
    """(n,) -> (n,) a distribution over the masked items, 0 elsewhere."""
    z: NDArray[np.float64] = np.where(mask, logits, -np.inf)
    e = np.exp(z - z[mask].max())
    probabilities: NDArray[np.float64] = e / e.sum()
    return probabilities


def inclusion_probabilities(weights: np.ndarray, k: int) -> np.ndarray:
    """(n,) non-negative weights -> (n,) pi proportional to them, capped at 1, summing to
    min(k, #positive): the marginals a fixed-size sample of that many distinct items can have."""
    pi = np.zeros(len(weights))
    free = weights > 0
    k = min(k, int(free.sum()))
    capped = 0
    while free.any():
        pi[free] = (k - capped) * weights[free] / weights[free].sum()
        over = free & (pi >= 1.0)
        if not over.any():
            break
        pi[over] = 1.0
        free &= ~over
        capped += int(over.sum())
    return pi


def systematic_sample(rng: np.random.Generator, pi: np.ndarray) -> np.ndarray:
    """Madow's systematic sampling over a random order: round(sum pi) distinct indices, index i
    included with probability exactly pi_i; returned in a uniformly random (display) order."""
    order = rng.permutation(np.flatnonzero(pi > 0))
    k = round(float(pi.sum()))
    bounds = np.cumsum(pi[order])
    bounds[-1] = k
    picks = order[np.searchsorted(bounds, rng.random() + np.arange(k), side="right")]
    return rng.permutation(picks)


def _draw_visitors(rng: np.random.Generator, activity: np.ndarray, arrival: np.ndarray, n_visits: int) -> np.ndarray:
    """(n_visits,) users, each drawn by activity among the users arrived by that visit (rejection)."""
    users = np.empty(n_visits, dtype=np.int64)
    pending = np.arange(n_visits)
    p = activity / activity.sum()
    while pending.size:
        draws = rng.choice(len(p), pending.size, p=p)
        ok = arrival[draws] <= pending
        users[pending[ok]] = draws[ok]
        pending = pending[~ok]
    return users


def _visit_times(rng: np.random.Generator, cfg: ExposureConfig) -> np.ndarray:
    """(n_visits,) ms timestamps, far enough apart for each visit's clicks and conversions."""
    gaps = 2 * cfg.slate_size + 2 + rng.exponential(cfg.mean_gap_ms, cfg.n_sessions)
    return (START_TS_MS + np.cumsum(gaps)).astype(np.int64)


class ExposureWorld:
    """The truth: SyntheticWorld's latent world, the visit schedule, the logging policy and prices."""

    def __init__(self, cfg: ExposureConfig) -> None:
        self.cfg = cfg
        self.latent = SyntheticWorld(cfg)
        rng = np.random.default_rng([cfg.seed, 1])
        self.visit_user = _draw_visitors(rng, self.latent.user_activity, self.latent.user_arrival, cfg.n_sessions)
        self.visit_ts = _visit_times(rng, cfg)
        self.item_price = np.round(cfg.mean_value * rng.lognormal(-0.18, 0.6, cfg.n_items), 2)
        self.drift_visit = self.latent.drift_session
        self.drift_ts_ms = int(self.visit_ts[self.drift_visit]) if self.drift_visit < cfg.n_sessions else None
        self.item_attrs = [
            ItemAttributes(category=f"cat{c}", tags=tags)
            for c, tags in zip(self.latent.item_category.tolist(), self.latent.item_tags)
        ]
        self._user_index = {user_key(u): u for u in range(cfg.n_users)}
        self._item_index = {item_key(i): i for i in range(cfg.n_items)}

    def visit_at(self, ts_ms: int) -> int:
        """The visit whose state holds at ts: the last one started at or before it (0 before the first)."""
        return max(int(np.searchsorted(self.visit_ts, ts_ms, side="right")) - 1, 0)

    def user_index(self, user_id: str) -> int:
        try:
            return self._user_index[user_id]
        except KeyError:
            raise KeyError(f"user {user_id!r} is not in this world ({self.cfg.n_users} users)") from None

    def item_indices(self, item_ids: Sequence[str]) -> np.ndarray:
        """(m,) indices, -1 for ids this world does not hold."""
        get = self._item_index.get
        return np.fromiter((get(i, -1) for i in item_ids), dtype=np.int64, count=len(item_ids))

    def available(self, visit: int) -> np.ndarray:
        """(n_items,) bool: the items that exist at this visit."""
        return self.latent.item_arrival <= visit

    def policy_weights(self, user: int, visit: int) -> np.ndarray:
        """(n_items,) the logging policy's mixture of popularity and true affinity, 0 for absent items."""
        cfg, latent = self.cfg, self.latent
        mask = self.available(visit)
        popularity = masked_softmax(cfg.popularity_temperature * latent.item_bias(visit), mask)
        affinity = masked_softmax(cfg.affinity_temperature * (latent.item_vec @ latent.user_vectors(visit)[user]), mask)
        return cfg.popularity_share * popularity + (1.0 - cfg.popularity_share) * affinity

    def inclusion(self, user: int, visit: int) -> np.ndarray:
        """(n_items,) the exact probability that each item is in this user's slate at this visit."""
        return inclusion_probabilities(self.policy_weights(user, visit), self.cfg.slate_size)

    def click_probability(
        self, user: int, items: np.ndarray, visit: int, positions: np.ndarray, clicked_before: np.ndarray
    ) -> np.ndarray:
        """True P(click | shown). items, clicked_before: (m,); positions broadcast against them."""
        p = self.latent.click_probability(np.full(len(items), user), items, visit, positions)
        return np.where(clicked_before, p * self.cfg.reclick_propensity, p).clip(0.0, 1.0)

    def shown_click_probability(
        self, user: int, items: np.ndarray, visit: int, clicked_before: np.ndarray
    ) -> NDArray[np.float64]:
        """(m,) P(click | shown) averaged over the uniformly random display position."""
        positions = np.arange(self.cfg.slate_size)[:, None]
        p = self.click_probability(user, items, visit, positions, clicked_before)
        mean: NDArray[np.float64] = p.mean(axis=0)
        return mean


def draw_visit(
    rng: np.random.Generator, world: ExposureWorld, visit: int, user: int, clicked_before: np.ndarray
) -> Visit:
    """One visit of ``user``: slate, clicks, conversions. clicked_before: (n_items,) bool, not kept."""
    pi = world.inclusion(user, visit)
    items = systematic_sample(rng, pi)
    again = clicked_before[items]
    p_click = world.click_probability(user, items, visit, np.arange(len(items)), again)
    clicked = rng.random(len(items)) < p_click
    users = np.full(len(items), user)
    converted = clicked & (rng.random(len(items)) < world.latent.conversion_probability(users, items, visit))
    return Visit(visit, user, int(world.visit_ts[visit]), items, pi[items], clicked, converted, clicked & again)


def simulate(world: ExposureWorld) -> Iterator[Visit]:
    """Every visit of the schedule in order; the same world, the same visits."""
    rng = np.random.default_rng([world.cfg.seed, 2])
    clicked = np.zeros((world.cfg.n_users, world.cfg.n_items), dtype=bool)
    for visit, user in enumerate(world.visit_user.tolist()):
        v = draw_visit(rng, world, visit, user, clicked[user])
        clicked[user, v.items[v.clicked]] = True
        yield v


def exposure_events(cfg: ExposureConfig | None = None, world: ExposureWorld | None = None) -> Iterator[Event]:
    """Yield the log in timestamp order. Same config, same events, byte for byte."""
    cfg = cfg or ExposureConfig()
    world = world or ExposureWorld(cfg)
    n = 0
    for v in simulate(world):
        for ts, kind, fields in _visit_events(world, v):
            n += 1
            yield Event(event_id=f"exp{cfg.seed}-{n}", ts=ts, type=kind, **fields)


def click_ts(visit_ts_ms: int, position: int) -> int:
    """A click's timestamp: after its visit's impressions, before the next position's click."""
    return visit_ts_ms + 1 + 2 * position


def _visit_events(world: ExposureWorld, v: Visit) -> Iterator[tuple[int, EventType, dict[str, Any]]]:
    """(ts, type, fields) of a visit: its impressions, then each click and its conversion."""
    request_id = f"r{world.cfg.seed}-{v.number}"
    common = [
        dict(
            user_id=user_key(v.user),
            item_id=item_key(item),
            item=world.item_attrs[item],
            context=Context(position=pos, surface="home", request_id=request_id, propensity=pi),
        )
        for pos, (item, pi) in enumerate(zip(v.items.tolist(), v.propensity.tolist()))
    ]
    for fields in common:
        yield v.ts_ms, "impression", fields
    for pos in np.flatnonzero(v.clicked).tolist():
        yield click_ts(v.ts_ms, pos), "click", common[pos]
        if v.converted[pos]:
            price = float(world.item_price[v.items[pos]])
            yield click_ts(v.ts_ms, pos) + 1, "conversion", {**common[pos], "value": price}


def first_clicks(world: ExposureWorld) -> NDArray[np.int64]:
    """(n_users, n_items) ms timestamp of each user's first click on each item, NEVER if none."""
    first = np.full((world.cfg.n_users, world.cfg.n_items), NEVER, dtype=np.int64)
    for v in simulate(world):
        for pos in np.flatnonzero(v.clicked & ~v.reclicked).tolist():
            first[v.user, v.items[pos]] = click_ts(v.ts_ms, pos)
    return first


class ExposureOracle:
    """The ceiling: the true exposure and click probabilities of the world at any timestamp.

    Built from the config alone: it replays the world's visits once (~3 s at the defaults), so it
    knows each user's history.
    """

    def __init__(self, cfg: ExposureConfig | None = None, world: ExposureWorld | None = None) -> None:
        self.world = world or ExposureWorld(cfg or ExposureConfig())
        self.first_click_ts = first_clicks(self.world)

    def _resolve(self, user_id: str, item_ids: Sequence[str], ts_ms: int) -> tuple[int, np.ndarray, int, np.ndarray]:
        """user, (m,) item indices (absent ones as 0), visit, (m,) whether each item exists at ts."""
        user, visit = self.world.user_index(user_id), self.world.visit_at(ts_ms)
        items = self.world.item_indices(item_ids)
        exists = (items >= 0) & self.world.available(visit)[np.maximum(items, 0)]
        return user, np.maximum(items, 0), visit, exists

    def _clicked_before(self, user: int, items: NDArray[np.intp], ts_ms: int) -> NDArray[np.bool_]:
        clicked: NDArray[np.bool_] = self.first_click_ts[user, items] < ts_ms
        return clicked

    def exposure(self, user_id: str, item_ids: Sequence[str], ts_ms: int) -> np.ndarray:
        """(m,) the logging policy's inclusion probability of each item in a visit at ts (0 if absent)."""
        user, items, visit, exists = self._resolve(user_id, item_ids, ts_ms)
        return np.where(exists, self.world.inclusion(user, visit)[items], 0.0)

    def click_probability(
        self, user_id: str, item_ids: Sequence[str], ts_ms: int, positions: Sequence[int] | np.ndarray
    ) -> np.ndarray:
        """(m,) true P(click | shown at that position) at ts, the user's history before ts included."""
        user, items, visit, exists = self._resolve(user_id, item_ids, ts_ms)
        again = self._clicked_before(user, items, ts_ms)
        p = self.world.click_probability(user, items, visit, np.asarray(positions), again)
        return np.where(exists, p, 0.0)

    def next_click_scores(self, user_id: str, item_ids: Sequence[str], ts_ms: int) -> np.ndarray:
        """(m,) expected clicks on each item in a visit of the user at ts: exposure x P(click | shown).
        -inf for items that do not exist at ts."""
        user, items, visit, exists = self._resolve(user_id, item_ids, ts_ms)
        again = self._clicked_before(user, items, ts_ms)
        scores = self.world.inclusion(user, visit)[items] * self.world.shown_click_probability(
            user, items, visit, again
        )
        return np.where(exists, scores, -np.inf)
