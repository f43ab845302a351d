"""Slate figures: how well a ranker orders the items a visit really showed (issue 14, protocol b).

A **visit** is the impressions shown together: the same ``context.request_id``, or without one, the
same user and timestamp. Each shown item is labelled **clicked** -- a click on that item by that user
within the visit: the same request_id, or without one, after the impression and before the user's
next visit -- and **converted** alike. Grouping events into visits is the caller's; these classes are
fed one visit at a time, with each ranker's scores computed *before* the visit's events were learned
(the caller guarantees that too), and keep per-user sums only.

Per ranker:

- **GAUC**: each visit's AUC of its clicked shown items against its non-clicked ones (a tie counts
  half), averaged over the visits with at least one click and one non-click, each weighted by its
  impressions. Other visits order nothing that was judged, and are counted as skipped.
- **NDCG@k**: the DCG of the clicked items in the ranker's order of the shown items (binary
  relevance) over the ideal DCG of that many clicked items, averaged over visits with a click.
  Tied scores get the mean discount of the places they share, as the AUC counts a tie half.
- **Log-loss against the constant CTR**: the click model's log-loss per impression beside that of
  the constant predictor, which gives every impression of a visit the click-through rate of the run
  before it, (clicks + prior) / (impressions + 2 prior) -- a model that cannot beat it has learned
  nothing about *which* item gets clicked.

Intervals resample users, each with all their visits (``stream.evaluation.paired``): one user's
visits share their tastes, so they are not independent draws.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
from numpy.typing import NDArray

from stream.evaluation.paired import Interval, IntervalOptions, UserSums, ratio

User = Hashable
# The log-loss of a probability of exactly 0 or 1 is infinite; the prequential LogLoss clips alike.
_EPS = 1e-7


def check_shown(**columns: np.ndarray) -> None:
    """Refuse a visit whose per-shown-item arrays are not all (n_shown,), naming them."""
    shapes = {name: np.shape(c) for name, c in columns.items()}
    if len(set(shapes.values())) != 1 or len(next(iter(shapes.values()))) != 1:
        raise ValueError(f"{', '.join(shapes)} must be one (n_shown,) array each; got shapes {shapes}")


def _places(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n,) scores -> for each item, how many score above it and how many tie with it (itself
    included). Pairwise: a slate holds tens of items, where this is ~20x faster than a sort-based
    rank (scipy's rankdata)."""
    above = (scores[None, :] > scores[:, None]).sum(axis=1)
    tied = (scores[None, :] == scores[:, None]).sum(axis=1)
    return above, tied


def visit_auc(scores: np.ndarray, clicked: np.ndarray) -> float:
    """(n_shown,) scores and bool labels -> the AUC of clicked vs not (ties half); nan without both."""
    clicks = int(clicked.sum())
    others = len(clicked) - clicks
    if not clicks or not others:
        return float("nan")
    pos, neg = scores[clicked], scores[~clicked]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (clicks * others))


def visit_ndcg(scores: np.ndarray, clicked: np.ndarray, k: int) -> float:
    """(n_shown,) scores and bool labels -> NDCG@k of the clicked items; nan without a click."""
    clicks = int(clicked.sum())
    if not clicks:
        return float("nan")
    place = np.arange(len(scores))
    discount = np.where(place < k, 1.0 / np.log2(place + 2.0), 0.0)
    cumulative = np.concatenate(([0.0], np.cumsum(discount)))
    first, tied = _places(scores)
    shared = (cumulative[first + tied] - cumulative[first]) / tied  # the mean discount of the places tied items share
    return float(shared[clicked].sum() / discount[:clicks].sum())


def log_loss(p: NDArray[np.float64], y: NDArray[np.bool_]) -> NDArray[np.float64]:
    """(n,) probabilities and bool outcomes -> (n,) log-losses, p clipped away from 0 and 1."""
    p = np.clip(p, _EPS, 1.0 - _EPS)
    return -np.where(y, np.log(p), np.log1p(-p))


class SlateScore:
    """GAUC and NDCG@k of one ranker over the visits it is fed."""

    _COLUMNS = ("auc_visits", "auc_impressions", "weighted_auc", "ndcg_visits", "ndcg")

    def __init__(self, k: int = 10) -> None:
        self.k = k
        self.visits = 0
        self._sums = UserSums(self._COLUMNS)

    def add_visit(self, user: User, scores: np.ndarray, clicked: np.ndarray) -> None:
        """scores: (n_shown,) the ranker's, before the visit was learned; clicked: (n_shown,) bool."""
        check_shown(scores=scores, clicked=clicked)
        scores, clicked = np.asarray(scores, np.float64), np.asarray(clicked, bool)
        auc, ndcg = visit_auc(scores, clicked), visit_ndcg(scores, clicked, self.k)
        n = len(scores) if not np.isnan(auc) else 0
        self._sums.add(user, (n > 0, n, n * auc if n else 0.0, not np.isnan(ndcg), np.nan_to_num(ndcg)))
        self.visits += 1

    @property
    def gauc_visits(self) -> int:
        return int(self._sums.total("auc_visits"))

    @property
    def skipped(self) -> int:
        """Visits without both a click and a non-click: no AUC."""
        return self.visits - self.gauc_visits

    def intervals(self, confidence: float = 0.95, resamples: int = 9999, seed: int = 0) -> dict[str, Interval]:
        """GAUC and NDCG@k, each with an interval resampling users."""
        kw: IntervalOptions = {"confidence": confidence, "resamples": resamples, "seed": seed}
        return {
            "gauc": self._sums.interval(ratio, "weighted_auc", "auc_impressions", **kw),
            f"ndcg@{self.k}": self._sums.interval(ratio, "ndcg", "ndcg_visits", **kw),
        }

    def summary(
        self, digits: int = 4, confidence: float = 0.95, resamples: int = 9999, seed: int = 0
    ) -> dict[str, object]:
        """{"gauc": Interval.to_dict(), "ndcg@k": ..., "visits", "gauc_visits", "skipped", "ndcg_visits"}."""
        figures = {name: iv.to_dict(digits) for name, iv in self.intervals(confidence, resamples, seed).items()}
        return {
            **figures,
            "visits": self.visits,
            "gauc_visits": self.gauc_visits,
            "skipped": self.skipped,
            "ndcg_visits": int(self._sums.total("ndcg_visits")),
        }


class LogLossVsConstant:
    """The click model's log-loss per impression beside the prequential constant-CTR predictor's."""

    def __init__(self, prior: float = 0.5) -> None:
        self.prior = prior
        self.clicks = 0
        self.impressions = 0
        self.visits = 0
        self._sums = UserSums(("impressions", "model", "constant"))

    @property
    def constant_ctr(self) -> float:
        """What the constant predictor says for the next visit: the run's CTR so far, smoothed."""
        return (self.clicks + self.prior) / (self.impressions + 2 * self.prior)

    def add_visit(self, user: User, p_model: np.ndarray, clicked: np.ndarray) -> None:
        """p_model: (n_shown,) the click model's click probabilities, before the visit; clicked: (n_shown,)."""
        check_shown(p_model=p_model, clicked=clicked)
        p_model, clicked = np.asarray(p_model, np.float64), np.asarray(clicked, bool)
        constant = log_loss(np.full(len(clicked), self.constant_ctr), clicked)
        self._sums.add(user, (len(clicked), log_loss(p_model, clicked).sum(), constant.sum()))
        self.clicks += int(clicked.sum())
        self.impressions += len(clicked)
        self.visits += 1

    def intervals(self, confidence: float = 0.95, resamples: int = 9999, seed: int = 0) -> dict[str, Interval]:
        """Both log-losses and the model's minus the constant's (below zero: the model is better)."""
        kw: IntervalOptions = {"confidence": confidence, "resamples": resamples, "seed": seed}
        return {
            "model_logloss": self._sums.interval(ratio, "model", "impressions", **kw),
            "constant_logloss": self._sums.interval(ratio, "constant", "impressions", **kw),
            "model_minus_constant": self._sums.interval(
                lambda m, c, n: (m - c) / n, "model", "constant", "impressions", **kw
            ),
        }

    def summary(
        self, digits: int = 4, confidence: float = 0.95, resamples: int = 9999, seed: int = 0
    ) -> dict[str, object]:
        """{"model_logloss", "constant_logloss", "model_minus_constant": Interval.to_dict(), counts}."""
        figures = {name: iv.to_dict(digits) for name, iv in self.intervals(confidence, resamples, seed).items()}
        return {**figures, "impressions": self.impressions, "visits": self.visits, "clicks": self.clicks}
