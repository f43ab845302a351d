"""Incremental matrix factorisation: online pairwise (BPR, Rendle et al. 2009) SGD in the ISGD
style (Vinagre et al., 2014): one pass, one update per event, no replay.

The score is s(u, i) = b_i + p_u . q_i. Per click (u, i) and each of ``negatives`` items j drawn
uniformly from the catalogue, one step on -log sigmoid(s(u, i) - s(u, j)). The item bias absorbs
popularity, leaving the factors for taste. Measured on the synthetic stream (800 users, 12k
sessions): pointwise ISGD 0.12 recall@10 (= popularity), this 0.23. Negatives come from a hash of
the event id and new rows from a generator seeded by (seed, row), so the model holds no
random-generator state and replays are bit-identical.
New users/items start from N(0, 0.1^2).
Shapes: P (users, f), Q (items, f); scoring is one (items, f) @ (f,) product.
The per-click steps and the pointwise score are numba kernels: on 16-factor rows, numpy's
per-call overhead made one click's four steps cost ~28 us; compiled they cost ~1 us.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

from stream.learners.base import CatalogueRanker
from stream.state.features import FeatureState, Interaction
from stream.state.serial import pack_array, unpack_array


@numba.njit(cache=True, nogil=True)
def _pairwise_steps(
    P: np.ndarray,
    Q: np.ndarray,
    b: np.ndarray,
    u: int,
    i: int,
    h: int,
    n_items: int,
    negatives: int,
    lr: float,
    shrink: float,
) -> None:
    """In place, one after another: for each negative j, one step on -log sigmoid(s(u,i) - s(u,j)).

    j = (h * 2654435761 + k * 40503) mod n_items, in uint64 (exact for a 32-bit hash h).
    """
    p, qi, f = P[u], Q[i], P.shape[1]
    for k in range(negatives):
        j = np.int64((np.uint64(h) * np.uint64(2654435761) + np.uint64(k) * np.uint64(40503)) % np.uint64(n_items))
        if j == i:
            continue
        qj = Q[j]
        margin = b[i] - b[j]
        for d in range(f):
            margin += p[d] * (qi[d] - qj[d])
        g = lr / (1.0 + math.exp(min(margin, 30.0)))  # lr * sigmoid(-margin), overflow-safe
        for d in range(f):
            pd = p[d]
            p[d] = pd * shrink + g * (qi[d] - qj[d])
            qi[d] = qi[d] * shrink + g * pd
            qj[d] = qj[d] * shrink - g * pd
        b[i] = b[i] * shrink + g
        b[j] = b[j] * shrink - g


@numba.njit(cache=True, nogil=True)
def _score(P: NDArray[np.float64], Q: NDArray[np.float64], b: NDArray[np.float64], u: int, i: int) -> float:
    s: float = b[i]
    for d in range(P.shape[1]):
        s += P[u, d] * Q[i, d]
    return s


class IncrementalMF(CatalogueRanker):
    name = "isgd_mf"

    def __init__(
        self,
        state: FeatureState,
        factors: int = 32,
        learning_rate: float = 0.05,
        regularisation: float = 0.01,
        negatives: int = 2,
        seed: int = 7,
    ) -> None:
        self.state = state
        self.f = factors
        self.lr = learning_rate
        self.reg = regularisation
        self.negatives = negatives
        self.seed = seed
        self.P = np.zeros((0, factors))
        self.Q = np.zeros((0, factors))
        self.b = np.zeros(0)

    def _grow(self, users: int, items: int) -> None:
        if users > len(self.P):
            extra = max(users - len(self.P), len(self.P) // 2, 64)
            self.P = np.vstack([self.P, self._init_rows(0, len(self.P), extra)])
        if items > len(self.Q):
            extra = max(items - len(self.Q), len(self.Q) // 2, 64)
            self.Q = np.vstack([self.Q, self._init_rows(1, len(self.Q), extra)])
            self.b = np.concatenate([self.b, np.zeros(extra)])

    def _init_rows(self, kind: int, start: int, count: int) -> np.ndarray:
        return np.random.default_rng((self.seed, kind, start)).normal(0, 0.1, (count, self.f))

    def learn_one(self, x: Interaction) -> None:
        """One pairwise step per sampled negative j: raise s(u, i) above s(u, j)."""
        if x.type != "click":
            return
        self._grow(len(self.state.users), len(self.state.items))
        n_items = self.state.n_items
        if n_items < 2:
            return
        _pairwise_steps(
            self.P,
            self.Q,
            self.b,
            x.user,
            x.item,
            zlib.crc32(x.event.event_id.encode()),
            n_items,
            self.negatives,
            self.lr,
            1.0 - self.lr * self.reg,
        )

    def score_catalogue(self, user: int) -> NDArray[np.float64]:
        """(n_items,) over the whole catalogue; its rows are one slice, a view (gathering them by index
        costs 5x on the prequential hot path)."""
        scores = np.zeros(self.state.n_items)
        known = min(len(scores), len(self.Q))
        scores[:known] = self._known_scores(user, slice(0, known))
        return scores

    def score_items(self, user: int | None, items: NDArray[np.intp]) -> NDArray[np.float64]:
        """(m,) of the given items (serving's candidates); an item without a row yet scores 0."""
        scores = np.zeros(len(items))
        known = items < len(self.Q)
        scores[known] = self._known_scores(user, items[known])
        return scores

    def _known_scores(self, user: int | None, rows: slice | NDArray[np.intp]) -> NDArray[np.float64]:
        """b + Q p over rows the model has; an unknown user gets the biases."""
        biases: NDArray[np.float64] = self.b[rows]
        if user is None or user >= len(self.P):
            return biases
        scores: NDArray[np.float64] = biases + self.Q[rows] @ self.P[user]
        return scores

    def score_one(self, user: int, item: int) -> float:
        if item >= len(self.Q):
            return 0.0
        if user >= len(self.P):
            return float(self.b[item])
        return _score(self.P, self.Q, self.b, user, item)

    def to_state(self) -> dict[str, Any]:
        return {"P": pack_array(self.P), "Q": pack_array(self.Q), "b": pack_array(self.b)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.P = unpack_array(state["P"])
        self.Q = unpack_array(state["Q"])
        self.b = unpack_array(state["b"])
