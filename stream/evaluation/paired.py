"""Is one ranker's recall really above another's? A paired comparison on the same clicks.

Two rankers scored on the same clicks hit and miss together far more often than not, so the
difference of their recalls is much tighter than either recall alone; comparing two independent
standard errors throws that away. And one user's clicks are not independent draws (the same
history, the same tastes), so the interval resamples users, each with all their clicks, rather
than single clicks -- the cluster bootstrap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import bootstrap


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
        return {"lead": round(self.lead, digits), "low": round(self.low, digits), "high": round(self.high, digits),
                "confidence": self.confidence, "clicks": self.clicks, "users": self.users,
                "significant": self.significant}


def paired_lead(a_hits: np.ndarray, b_hits: np.ndarray, users: np.ndarray, confidence: float = 0.95,
                resamples: int = 9999, seed: int = 0) -> Lead:
    """How far ranker a's recall leads b's, and a bootstrap interval over users.

    a_hits, b_hits: (clicks,) bool -- whether each ranker had the click's item in its top k.
    users: (clicks,) int -- who clicked; resampled as clusters.
    """
    a_hits, b_hits, users = np.asarray(a_hits, bool), np.asarray(b_hits, bool), np.asarray(users)
    if not a_hits.shape == b_hits.shape == users.shape or a_hits.ndim != 1:
        raise ValueError(f"a_hits, b_hits and users must be one (clicks,) array each; got shapes "
                         f"{a_hits.shape}, {b_hits.shape}, {users.shape}")
    _, cluster = np.unique(users, return_inverse=True)
    diff = np.bincount(cluster, weights=a_hits.astype(np.float64) - b_hits)  # (users,)
    count = np.bincount(cluster).astype(np.float64)                          # (users,)
    lead = float(diff.sum() / count.sum()) if len(count) else float("nan")
    if len(count) < 2:
        return Lead(lead, float("nan"), float("nan"), confidence, int(count.sum()), len(count))

    def ratio(d: np.ndarray, c: np.ndarray, axis: int = -1) -> np.ndarray:
        return d.sum(axis=axis) / c.sum(axis=axis)

    result = bootstrap((diff, count), ratio, paired=True, vectorized=True, n_resamples=resamples,
                       confidence_level=confidence, method="percentile", rng=np.random.default_rng(seed))
    ci = result.confidence_interval
    return Lead(lead, float(ci.low), float(ci.high), confidence, int(count.sum()), len(count))
