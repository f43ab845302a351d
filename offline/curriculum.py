"""Curriculum learning (Bengio et al. 2009): easy rows first, the whole set by the middle of training.

Difficulty of a row, by default from popularity in the training window: a click on a popular item
and a non-click on an obscure one are easy (popularity alone explains them); a click on an obscure
item or a non-click on a popular one is hard. With an earlier model at hand (a warm start), its
per-row loss is the difficulty instead.

Schedule (baby steps): epoch e (0-based) draws from the easiest
``min(1, start + (1 - start) * e / ramp_epochs)`` share of the rows, shuffled within that share.
``enabled=False`` gives plain shuffled epochs over all rows, for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from offline.samples import Rows


@dataclass(frozen=True)
class Curriculum:
    enabled: bool = True
    start: float = 0.4
    ramp_epochs: int = 3

    def share(self, epoch: int) -> float:
        if not self.enabled:
            return 1.0
        return min(1.0, self.start + (1.0 - self.start) * epoch / max(self.ramp_epochs, 1))

    def epoch_order(self, difficulty: np.ndarray, epoch: int, rng: np.random.Generator) -> np.ndarray:
        """(n,) difficulty -> the row indices this epoch trains on, shuffled."""
        n = len(difficulty)
        if not self.enabled:
            return rng.permutation(n)
        easiest = np.argsort(difficulty, kind="stable")[: max(1, int(round(self.share(epoch) * n)))]
        return rng.permutation(easiest)


def popularity_difficulty(rows: Rows) -> np.ndarray:
    """(n,) in [0, 1]: clicks on rare items and non-clicks on popular items are hard."""
    counts = np.bincount(rows.item[rows.click > 0], minlength=int(rows.item.max()) + 1 if len(rows) else 1)
    pop = counts[rows.item].astype(np.float64)
    pct = (rankdata(pop) - 0.5) / max(len(pop), 1)  # 0 rare .. 1 popular; ties share their mean rank
    return np.where(rows.click > 0, 1.0 - pct, pct)
