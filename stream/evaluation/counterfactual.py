"""What a ranker would have earned had it chosen the slate, from logged propensities (issue 14, protocol c).

Visits and their labels are as in ``stream.evaluation.slate``. Each shown item also carries its
**propensity** (``context.propensity``: the probability that the logging policy showed it in this
visit) and, for a conversion, its **value** (``value``; 0 when not converted).

**Self-normalised IPS** (SNIPS): over all shown items of all visits,
w = [the item is in the ranker's top k for that visit] / propensity, and the ranker's rate of an
outcome y (click, conversion, conversion value) per impression is sum(w y) / sum(w). Dividing by the
propensity undoes the logging policy's preference for what it showed often; dividing by sum(w)
rather than the number of visits trades an O(1/n) bias for a variance that stays bounded when a
few weights are large. Beside it: the logging policy's own rate (mean y per impression), and the
ranker's **lead** over it.

Whether the estimate is worth anything: the **effective sample size** (sum w)^2 / sum(w^2), the
impressions an unweighted mean of the same precision would need, and the **overlap share**, the
visits where the ranker's top k held any shown item at all (the rest say nothing about the ranker).

Intervals (95 % by default) resample users, all of a user's visits together, and recompute each
ratio on each resample (``stream.evaluation.paired.cluster_interval``); the lead is paired, both
rates computed on the same resampled users.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from stream.evaluation.paired import Interval, IntervalOptions, UserSums, ratio
from stream.evaluation.slate import User, check_shown

OUTCOMES = ("click", "conversion", "value")
_COLUMNS = ("visits", "overlapping_visits", "impressions", "w", "w2", *OUTCOMES, *(f"w_{y}" for y in OUTCOMES))


def _lead(
    weighted: NDArray[np.float64],
    weights: NDArray[np.float64],
    outcome: NDArray[np.float64],
    impressions: NDArray[np.float64],
) -> NDArray[np.float64]:
    return weighted / weights - outcome / impressions


class SnipsEstimate:
    """A ranker's click, conversion and value rates estimated by SNIPS, beside the logging policy's."""

    def __init__(self) -> None:
        self.valued = False
        self._sums = UserSums(_COLUMNS)

    def add_visit(
        self,
        user: User,
        in_top_k: np.ndarray,
        propensity: np.ndarray,
        clicked: np.ndarray,
        converted: np.ndarray,
        value: np.ndarray | None = None,
    ) -> None:
        """Per shown item, each (n_shown,): in the ranker's top k, propensity, clicked, converted, value."""
        value = np.zeros(len(clicked)) if value is None else value
        check_shown(in_top_k=in_top_k, propensity=propensity, clicked=clicked, converted=converted, value=value)
        propensity = np.asarray(propensity, np.float64)
        if not np.all((propensity > 0) & (propensity <= 1)):
            raise ValueError(f"propensities must lie in (0, 1]; got {propensity}")
        in_top_k = np.asarray(in_top_k, bool)
        w = in_top_k / propensity
        y = np.stack(
            [np.asarray(clicked, np.float64), np.asarray(converted, np.float64), np.asarray(value, np.float64)]
        )  # (outcomes, n_shown)
        self.valued |= bool(y[2].any())
        self._sums.add(user, np.concatenate(([1.0, in_top_k.any(), len(w), w.sum(), w @ w], y.sum(axis=1), y @ w)))

    @property
    def visits(self) -> int:
        return int(self._sums.total("visits"))

    @property
    def effective_sample_size(self) -> float:
        w2 = self._sums.total("w2")
        return self._sums.total("w") ** 2 / w2 if w2 else 0.0

    @property
    def overlap_share(self) -> float:
        return self._sums.total("overlapping_visits") / self.visits if self.visits else float("nan")

    def outcomes(self) -> tuple[str, ...]:
        """The outcomes there are figures of: value only once some conversion had one."""
        return OUTCOMES if self.valued else OUTCOMES[:2]

    def intervals(
        self, outcome: str = "click", confidence: float = 0.95, resamples: int = 9999, seed: int = 0
    ) -> dict[str, Interval]:
        """The ranker's rate, the logging policy's and the lead (ranker minus logging), resampling users."""
        kw: IntervalOptions = {"confidence": confidence, "resamples": resamples, "seed": seed}
        return {
            "ranker": self._sums.interval(ratio, f"w_{outcome}", "w", **kw),
            "logging": self._sums.interval(ratio, outcome, "impressions", **kw),
            "lead": self._sums.interval(_lead, f"w_{outcome}", "w", outcome, "impressions", **kw),
        }

    def summary(
        self, digits: int = 4, confidence: float = 0.95, resamples: int = 9999, seed: int = 0
    ) -> dict[str, object]:
        """{outcome: {"ranker", "logging", "lead": Interval.to_dict()}, "effective_sample_size",
        "overlap_share", "visits", "impressions", "users"}; outcomes "click", "conversion", "value"."""
        figures = {
            y: {name: iv.to_dict(digits) for name, iv in self.intervals(y, confidence, resamples, seed).items()}
            for y in self.outcomes()
        }
        return {
            **figures,
            "effective_sample_size": round(self.effective_sample_size, 1),
            "overlap_share": round(self.overlap_share, digits) if self.visits else None,
            "visits": self.visits,
            "impressions": int(self._sums.total("impressions")),
            "users": self._sums.users,
        }
