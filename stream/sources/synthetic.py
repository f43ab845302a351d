"""A seeded synthetic event stream whose ground truth is known, so learners can be checked against it.

Generative model (all draws from one ``numpy.random.Generator``):

* ``n_categories`` category centroids ``mu_c`` in R^dim. Item ``i`` has a category ``c_i``, a latent
  vector ``v_i = mu_{c_i} + noise`` and a popularity bias ``b_i`` that falls with a Zipf rank.
  Tags are the category token plus a few tokens drawn from a category-specific vocabulary, so
  content features carry the latent signal (cold start can use them).
* User ``u`` prefers one or two categories: ``p_u`` is a mix of their centroids plus noise.
* Items and users appear over time: a share is present from the start, the rest arrive uniformly
  through the stream (cold start).
* At ``drift_at`` (a fraction of the sessions) every user's preferred categories are redrawn and
  item popularity is reshuffled (tastes and trends both move).
* Each session shows one user a slate of ``slate_size`` items they have not clicked before (half by
  popularity, half by the user's true affinity), emitting one ``impression`` each, then a ``click``
  with ``P = sigmoid(click_bias + affinity_scale * p_u.v_i + b_i - position_decay * position)``, and
  after a click a ``conversion`` with ``P = sigmoid(conv_bias + affinity_scale * p_u.v_i)``.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import numpy as np
from numpy.typing import NDArray

from stream.events import Context, Event, ItemAttributes

START_TS_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


class SyntheticConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    seed: int = 42
    n_users: int = 2000
    n_items: int = 1000
    n_sessions: int = 30_000
    n_categories: int = 20
    dim: int = 8
    slate_size: int = 10
    initial_users: float = 0.6
    initial_items: float = 0.6
    drift_at: float = 0.5
    popularity_zipf: float = 1.0
    affinity_scale: float = 1.6
    click_bias: float = -3.2
    conv_bias: float = -3.5
    position_decay: float = 0.05
    mean_gap_ms: float = 200.0


def _sigmoid(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return 1.0 / (1.0 + np.exp(-x))


class SyntheticWorld:
    """The ground truth: latent factors, biases, arrival times and the drift point."""

    def __init__(self, cfg: SyntheticConfig) -> None:
        self.cfg = cfg
        rng = np.random.default_rng(cfg.seed)
        self._rng = rng
        c, d = cfg.n_categories, cfg.dim
        self.centroids = rng.normal(0.0, 1.0, (c, d)) / np.sqrt(d) * 1.5
        self.item_category = rng.integers(0, c, cfg.n_items)
        self.item_vec = self.centroids[self.item_category] + rng.normal(0, 0.35, (cfg.n_items, d))
        ranks = rng.permutation(cfg.n_items) + 1
        self.item_bias_before = -cfg.popularity_zipf * np.log(ranks) / np.log(cfg.n_items) * 2.0 + 1.0
        self.item_bias_after = rng.permutation(self.item_bias_before)
        self.user_vec_before = self._draw_user_vectors(rng)
        self.user_vec_after = self._draw_user_vectors(rng)
        self.user_activity = 1.0 / (rng.permutation(cfg.n_users) + 1.0) ** 0.5
        self.user_arrival = self._arrivals(rng, cfg.n_users, cfg.initial_users)
        self.item_arrival = self._arrivals(rng, cfg.n_items, cfg.initial_items)
        vocab = [f"tok{k}" for k in range(c * 4)]
        self.item_tags = [
            [f"cat{cat}", *rng.choice(vocab[cat * 4 : (cat + 1) * 4], 2, replace=False).tolist()]
            for cat in self.item_category
        ]
        self.drift_session = int(cfg.drift_at * cfg.n_sessions)
        self.drift_ts_ms: int | None = None  # set by synthetic_events when the stream reaches it
        self.session_ts_ms: list[int] = []  # each session's start, filled by synthetic_events

    def _draw_user_vectors(self, rng: np.random.Generator) -> NDArray[np.float64]:
        cfg = self.cfg
        first = rng.integers(0, cfg.n_categories, cfg.n_users)
        second = rng.integers(0, cfg.n_categories, cfg.n_users)
        mix = rng.uniform(0.5, 1.0, (cfg.n_users, 1))
        vec: NDArray[np.float64] = mix * self.centroids[first] + (1 - mix) * self.centroids[second]
        return vec + rng.normal(0, 0.2, (cfg.n_users, cfg.dim))

    def _arrivals(self, rng: np.random.Generator, n: int, initial: float) -> np.ndarray:
        """Session index from which each entity exists."""
        arrival = rng.uniform(0, self.cfg.n_sessions, n).astype(np.int64)
        arrival[rng.random(n) < initial] = 0
        return arrival

    def user_vectors(self, session: int) -> np.ndarray:
        return self.user_vec_before if session < self.drift_session else self.user_vec_after

    def item_bias(self, session: int) -> np.ndarray:
        return self.item_bias_before if session < self.drift_session else self.item_bias_after

    def click_probability(
        self, users: np.ndarray, items: np.ndarray, session: int, position: np.ndarray | int = 0
    ) -> np.ndarray:
        """True P(click | impression). users, items: (n,) index arrays -> (n,)."""
        cfg = self.cfg
        affinity = np.einsum("nd,nd->n", self.user_vectors(session)[users], self.item_vec[items])
        logit = cfg.click_bias + cfg.affinity_scale * affinity + self.item_bias(session)[items]
        return _sigmoid(logit - cfg.position_decay * np.asarray(position))

    def conversion_probability(self, users: np.ndarray, items: np.ndarray, session: int) -> np.ndarray:
        """True P(conversion | click). (n,) -> (n,)."""
        affinity = np.einsum("nd,nd->n", self.user_vectors(session)[users], self.item_vec[items])
        return _sigmoid(self.cfg.conv_bias + self.cfg.affinity_scale * affinity)


def user_key(index: int) -> str:
    return f"u{index}"


def item_key(index: int) -> str:
    return f"i{index}"


def synthetic_events(cfg: SyntheticConfig | None = None, world: SyntheticWorld | None = None) -> Iterator[Event]:
    """Yield the stream in timestamp order. Same config, same events, byte for byte."""
    cfg = cfg or SyntheticConfig()
    world = world or SyntheticWorld(cfg)
    rng = np.random.default_rng(cfg.seed + 1)
    clicked = np.zeros((cfg.n_users, cfg.n_items), dtype=bool)
    ts = float(START_TS_MS)
    world.session_ts_ms = []
    n = 0
    item_attrs = [
        ItemAttributes(category=f"cat{c}", tags=tags) for c, tags in zip(world.item_category.tolist(), world.item_tags)
    ]
    block = 256  # users are drawn per block of sessions; arrivals take effect at block starts
    for block_start in range(0, cfg.n_sessions, block):
        arrived = np.flatnonzero(world.user_arrival <= block_start)
        weights = world.user_activity[arrived]
        size = min(block, cfg.n_sessions - block_start)
        block_users = rng.choice(arrived, size, p=weights / weights.sum())
        for session, user in zip(range(block_start, block_start + size), block_users.tolist()):
            # Room for every click/conversion of the slate before the next session starts.
            ts += 2 * cfg.slate_size + 2 + rng.exponential(cfg.mean_gap_ms)
            world.session_ts_ms.append(int(ts))
            if session == world.drift_session:
                world.drift_ts_ms = int(ts)
            available = (world.item_arrival <= session) & ~clicked[user]
            if available.sum() < cfg.slate_size:
                continue
            slate = _draw_slate(rng, world, user, available, session, cfg.slate_size)
            positions = np.arange(len(slate))
            users = np.full(len(slate), user)
            clicks = rng.random(len(slate)) < world.click_probability(users, slate, session, positions)
            convs = clicks & (rng.random(len(slate)) < world.conversion_probability(users, slate, session))
            base_ts = int(ts)
            common = [
                dict(
                    user_id=user_key(user),
                    item_id=item_key(item),
                    item=item_attrs[item],
                    context=Context(position=pos, surface="home"),
                )
                for pos, item in enumerate(slate.tolist())
            ]
            for fields in common:
                n += 1
                yield Event(event_id=f"syn{cfg.seed}-{n}", ts=base_ts, type="impression", **fields)
            for pos in np.flatnonzero(clicks).tolist():
                clicked[user, slate[pos]] = True
                n += 1
                yield Event(event_id=f"syn{cfg.seed}-{n}", ts=base_ts + 1 + 2 * pos, type="click", **common[pos])
                if convs[pos]:
                    n += 1
                    yield Event(
                        event_id=f"syn{cfg.seed}-{n}", ts=base_ts + 2 + 2 * pos, type="conversion", **common[pos]
                    )


def _gumbel_top(rng: np.random.Generator, logits: np.ndarray, k: int) -> np.ndarray:
    """k draws without replacement, P proportional to exp(logits) (Gumbel-top-k)."""
    keys = logits + rng.gumbel(size=logits.shape)
    return np.argpartition(-keys, k)[:k]


def _draw_slate(
    rng: np.random.Generator, world: SyntheticWorld, user: int, available: np.ndarray, session: int, size: int
) -> np.ndarray:
    """Half the slate by popularity, half by the user's true affinity (a logged recommender)."""
    half = size // 2
    pop_logits = np.where(available, world.item_bias(session), -np.inf)
    by_pop = _gumbel_top(rng, pop_logits, half)
    affinity = world.item_vec @ world.user_vectors(session)[user] * 2.0
    aff_logits = np.where(available, affinity, -np.inf)
    aff_logits[by_pop] = -np.inf
    by_affinity = _gumbel_top(rng, aff_logits, size - half)
    slate = np.concatenate([by_pop, by_affinity])
    rng.shuffle(slate)
    return slate
