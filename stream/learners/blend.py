"""Online blend: the weights that combine the serving path's signals, learned from the clicks.

The serving path ranks one request's candidates by a weighted sum of each signal's z-scores (the
student's logits, item-kNN, the online factorisation, popularity). Fixed weights have to be chosen
on some data, and what suits one catalogue or one period does not suit the next. Here they are
learned test-then-learn, like every other learner: before a click is applied, the candidates the
serving path would have offered are scored, and the weights take one step of stochastic gradient
ascent on the log-likelihood of a softmax over those candidates (a listwise loss, as in ListNet
with a one-hot target)::

    p_j = softmax(w . z_j)          z_j: (signals,) z-scores of candidate j
    w  += lr * (z_clicked - sum_j p_j z_j)

A click whose item was not a candidate teaches nothing (no ranking of those candidates had it), and
a signal missing from a request (no model loaded: no ``student``) keeps its weight unchanged. Each
step costs the worker one more scoring of the user's candidates, so only a share of the clicks
(``sample_rate``, chosen by a hash of the event id: a click replayed after a crash is chosen again)
is learned from.

The configured weights are only the starting point: on the MovieLens-100K replay, runs starting from
equal weights and from (student 0.25, item_knn 4, isgd_mf 0, popularity 2) ended with the same
weights and the same recall to the fourth decimal (docs/results/history.md, "The serving path in the MovieLens-100K
replay").
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
from numpy.typing import NDArray

SIGNALS = (
    "student",
    "item_knn",
    "isgd_mf",
    "popularity",
    "trending",
    "shown",
    "category_exposure",
    "category_lift",
    "click_model",
)


def standardise(scores: NDArray[np.float64]) -> NDArray[np.float64]:
    """(signals, m) -> (signals, m) each row's z-scores; a constant signal contributes nothing.
    One pass over the stacked rows: per-row calls cost a request about 70 us (``bench serve``)."""
    if not scores.shape[-1]:
        return np.zeros_like(scores)
    std = scores.std(axis=-1, keepdims=True)
    spread = std > 1e-12
    return np.where(spread, (scores - scores.mean(axis=-1, keepdims=True)) / np.where(spread, std, 1.0), 0.0)


class OnlineBlend:
    name = "blend"

    def __init__(self, initial: dict[str, float], learning_rate: float, sample_rate: float = 1.0) -> None:
        """``initial``: signal name -> starting weight; ``learning_rate`` 0 keeps them fixed;
        ``sample_rate``: the share of clicks to learn from."""
        unknown = set(initial) - set(SIGNALS)
        if unknown:
            raise ValueError(f"unknown blend signals {sorted(unknown)}; known: {', '.join(SIGNALS)}")
        self.learning_rate = learning_rate
        self._sample_below = int(sample_rate * 2**32) if learning_rate else 0
        # Replaced whole by learn_one, never written in place: readers on other threads (HTTP
        # requests) take one reference and see one consistent set of weights.
        self.weights: dict[str, float] = {name: float(initial.get(name, 0.0)) for name in SIGNALS}
        self.clicks_learned = 0

    def samples(self, event_id: str) -> bool:
        """Is this click one to learn from? Decided by its id alone, so every replay agrees."""
        return zlib.crc32(event_id.encode()) < self._sample_below

    def _design(self, signals: dict[str, np.ndarray]) -> tuple[list[str], NDArray[np.float64]]:
        """The signals present, and their (m, signals) z-score matrix."""
        names = [name for name in SIGNALS if name in signals]
        return names, standardise(np.array([signals[n] for n in names], dtype=np.float64)).T

    def score(self, signals: dict[str, np.ndarray]) -> NDArray[np.float64]:
        """(m,) blended scores of one request's candidates, from each signal's (m,) scores."""
        weights = self.weights
        names, z = self._design(signals)
        return z @ np.array([weights[n] for n in names], dtype=np.float64)

    def learn_one(self, signals: dict[str, np.ndarray], clicked: int | None) -> None:
        """One step on a click: ``clicked`` is its item's position among the candidates, None if
        the item was not one of them."""
        if clicked is None or not self.learning_rate or not len(next(iter(signals.values()), ())):
            return
        weights = self.weights
        names, z = self._design(signals)
        w = np.array([weights[n] for n in names])
        s = z @ w
        p = np.exp(s - s.max())
        p /= p.sum()
        step = self.learning_rate * (z[clicked] - p @ z)
        if not np.isfinite(step).all():  # a non-finite weight would be snapshotted and never recover
            return
        self.weights = {**weights, **{n: float(weights[n] + d) for n, d in zip(names, step)}}
        self.clicks_learned += 1

    def to_state(self) -> dict[str, Any]:
        return {"weights": dict(self.weights), "clicks_learned": self.clicks_learned}

    def load_state(self, state: dict[str, Any]) -> None:
        self.weights = {name: float(state["weights"].get(name, 0.0)) for name in SIGNALS}
        self.clicks_learned = int(state["clicks_learned"])
