"""Is one ranker's recall really above another's? A paired comparison on the same clicks.

Two rankers scored on the same clicks hit and miss together far more often than not, so the
difference of their recalls is much tighter than either recall alone; comparing two independent
standard errors throws that away. And one user's clicks are not independent draws (the same
history, the same tastes), so the interval resamples users, each with all their clicks, rather
than single clicks -- the cluster bootstrap.

That bootstrap is the project's one interval (:func:`cluster_interval`): every figure it bounds is
a function of a few sums over users (hits and clicks here; weighted clicks and weights for the
counterfactual estimates, ``stream.evaluation.counterfactual``; per-visit AUC and impressions for
the slate figures, ``stream.evaluation.slate``), so a resample draws users with replacement, adds
up their parts, and recomputes the figure -- a ratio is recomputed as a ratio, never averaged.
:class:`UserSums` keeps those per-user parts as a replay goes, in memory O(users).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TypedDict, Unpack

import numpy as np
from numpy.typing import NDArray
from scipy.stats import DegenerateDataWarning, bootstrap

# (*part totals) -> figure, elementwise: each total is a scalar, or (resamples,) inside the bootstrap.
Statistic = Callable[..., np.ndarray]


class IntervalOptions(TypedDict, total=False):
    """How an interval is drawn (``cluster_interval``'s defaults: 0.95, 9999, 0), passed through by
    the figures built on it."""

    confidence: float
    resamples: int
    seed: int


# Resampled users held at once: bounds the bootstrap's memory (8 bytes each, per part).
_BATCH_ELEMENTS = 1 << 22


def ratio(numerator: NDArray[np.float64], denominator: NDArray[np.float64]) -> NDArray[np.float64]:
    """The figure most parts make: a total per a total (hits per click, clicks per impression)."""
    return numerator / denominator


@dataclass(frozen=True)
class Interval:
    """A figure over users and its bootstrap interval (nan when fewer than two users)."""

    estimate: float
    low: float
    high: float
    confidence: float
    users: int

    def to_dict(self, digits: int = 4) -> dict[str, float | int | None]:
        """Rounded, undefined figures as None (JSON has no nan)."""

        def r(x: float) -> float | None:
            return None if np.isnan(x) else round(x, digits)

        return {
            "estimate": r(self.estimate),
            "low": r(self.low),
            "high": r(self.high),
            "confidence": self.confidence,
            "users": self.users,
        }


def user_sums(users: np.ndarray, *rows: np.ndarray) -> tuple[np.ndarray, ...]:
    """Each (rows,) column summed per user: (users,) arrays in the order of np.unique(users)."""
    _, cluster = np.unique(users, return_inverse=True)
    return tuple(np.bincount(cluster, weights=np.asarray(r, np.float64)) for r in rows)


def cluster_interval(
    parts: Sequence[np.ndarray],
    statistic: Statistic = ratio,
    confidence: float = 0.95,
    resamples: int = 9999,
    seed: int = 0,
) -> Interval:
    """statistic(*totals of parts) and its percentile interval from resampling users.

    parts: each (users,) -- one user's total of one part; the same user in every part. Resamples
    where the statistic is undefined (only users without a denominator drawn, as happens with a
    handful of users) are left out: the interval is the figure's given that it exists.
    """
    parts = [np.asarray(p, np.float64) for p in parts]
    users = len(parts[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = float(statistic(*(p.sum() for p in parts))) if users else float("nan")
        if users < 2 or np.isnan(estimate):
            return Interval(estimate, float("nan"), float("nan"), confidence, users)
        low, high = _percentiles(parts, statistic, confidence, resamples, seed)
    return Interval(estimate, low, high, confidence, users)


def _percentiles(
    parts: list[np.ndarray], statistic: Statistic, confidence: float, resamples: int, seed: int
) -> tuple[float, float]:
    def resampled(*drawn: np.ndarray, axis: int = -1) -> np.ndarray:
        return statistic(*(d.sum(axis=axis) for d in drawn))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)  # undefined resamples: handled below
        result = bootstrap(
            parts,
            resampled,
            paired=True,
            vectorized=True,
            n_resamples=resamples,
            batch=max(1, _BATCH_ELEMENTS // len(parts[0])),
            confidence_level=confidence,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    low, high = result.confidence_interval
    if np.isnan(low) or np.isnan(high):
        low, high = np.nanquantile(result.bootstrap_distribution, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


class UserSums:
    """Running per-user totals of named columns, fed one visit at a time: what cluster_interval needs."""

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        self._index: dict[Hashable, int] = {}
        self._sums = np.zeros((64, len(self.columns)))

    def add(self, user: Hashable, values: Sequence[float] | np.ndarray) -> None:
        """Add one row, values: (columns,), to the user's totals."""
        row = self._index.setdefault(user, len(self._index))
        if row == len(self._sums):
            self._sums = np.concatenate([self._sums, np.zeros_like(self._sums)])
        self._sums[row] += values

    @property
    def users(self) -> int:
        return len(self._index)

    def parts(self, *columns: str) -> list[np.ndarray]:
        """The named columns, each (users,)."""
        return [self._sums[: self.users, self.columns.index(c)] for c in columns]

    def total(self, column: str) -> float:
        return float(self.parts(column)[0].sum())

    def interval(
        self, statistic: Statistic, *columns: str, confidence: float = 0.95, resamples: int = 9999, seed: int = 0
    ) -> Interval:
        """statistic(*totals of the columns), resampling users."""
        return cluster_interval(self.parts(*columns), statistic, confidence, resamples, seed)


@dataclass(frozen=True)
class Lead:
    """Recall of ranker a minus recall of ranker b on the same clicks, with its interval."""

    lead: float
    low: float
    high: float
    confidence: float
    clicks: int
    users: int

    @property
    def significant(self) -> bool:
        """The whole interval lies above zero: a leads b at this confidence."""
        return self.low > 0.0

    def to_dict(self, digits: int = 4) -> dict[str, float | int | bool]:
        return {
            "lead": round(self.lead, digits),
            "low": round(self.low, digits),
            "high": round(self.high, digits),
            "confidence": self.confidence,
            "clicks": self.clicks,
            "users": self.users,
            "significant": self.significant,
        }


def paired_lead(a_hits: np.ndarray, b_hits: np.ndarray, users: np.ndarray, **options: Unpack[IntervalOptions]) -> Lead:
    """How far ranker a's recall (or NDCG) leads b's, and a bootstrap interval over users.

    a_hits, b_hits: (clicks,) per-click figures of each ranker on the same clicks: bool hits (whether
    it had the click's item in its top k) for recall, or NDCG gains.
    users: (clicks,) int -- who clicked; resampled as clusters. options: as ``cluster_interval``'s.
    """
    a, b, users = np.asarray(a_hits, np.float64), np.asarray(b_hits, np.float64), np.asarray(users)
    if not a.shape == b.shape == users.shape or a.ndim != 1:
        raise ValueError(
            f"a_hits, b_hits and users must be one (clicks,) array each; got shapes {a.shape}, {b.shape}, {users.shape}"
        )
    iv = lead_interval(a, b, users, **options)
    return Lead(iv.estimate, iv.low, iv.high, iv.confidence, len(users), iv.users)


def lead_interval(
    a: NDArray[np.float64], b: NDArray[np.float64], users: np.ndarray, **options: Unpack[IntervalOptions]
) -> Interval:
    """mean(a - b) over the same (clicks,) figures of two rankers (hits, NDCG gains), with its
    interval resampling ``users`` (clicks,) as clusters: how far one ranker leads the other.
    options: as ``cluster_interval``'s."""
    diff, count = user_sums(users, a - b, np.ones(len(users)))
    return cluster_interval((diff, count), ratio, **options)
