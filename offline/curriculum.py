"""Curriculum learning (Bengio et al. 2009): easy groups first, the whole set by the middle of training.

The unit is a ranking group (a click and its negatives, or one slate), never a single row; for a
sequence model, a training window (``next_click_difficulty``). Ordered
by rows, the easy end was clicks on popular items and non-clicks on obscure ones: the teacher learnt
"popular means click" and left its first three epochs with validation losses of 4.65, 3.68 and
2.57 (0.50 once every row was in; ml-100k). Whole groups keep the click/non-click mix of the data
in every epoch and vary only how hard the choice within a group is.

Difficulty of a group, by default from popularity in the training window: choosing a popular
clicked item is easy (popularity alone explains it), an obscure one is hard; a group without a
click is hard when its items are popular. With an earlier model at hand (a warm start), its loss
could be the difficulty instead.

Schedule (baby steps): epoch e (0-based) draws from the easiest
``min(1, start + (1 - start) * e / ramp_epochs)`` share of the groups, shuffled within that share.
``enabled=False`` gives plain shuffled epochs over all groups, for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from offline.samples import Groups, Rows


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
        """(n,) difficulty of each unit -> the units this epoch trains on, shuffled."""
        n = len(difficulty)
        if not self.enabled:
            return rng.permutation(n)
        easiest = np.argsort(difficulty, kind="stable")[: max(1, round(self.share(epoch) * n))]
        return rng.permutation(easiest)


def next_click_difficulty(targets: np.ndarray) -> np.ndarray:
    """(N, L) next-click item rows of sequence windows (0: no click there) -> (N,) in [0, 1]: the mean
    rarity of a window's clicked items (popularity in these windows). A window without a click is
    easiest: it trains nothing."""
    clicked = targets[targets > 0]
    counts = np.bincount(clicked, minlength=int(targets.max()) + 1 if targets.size else 1).astype(np.float64)
    pct = np.zeros_like(counts)
    seen = counts > 0
    pct[seen] = (rankdata(counts[seen]) - 0.5) / max(int(seen.sum()), 1)  # 0 rare .. 1 popular over items
    rarity = np.where(targets > 0, 1.0 - pct[targets], 0.0)
    n = (targets > 0).sum(axis=1)
    out: np.ndarray = rarity.sum(axis=1) / np.maximum(n, 1)
    return out


def popularity_difficulty(rows: Rows, groups: Groups) -> np.ndarray:
    """(G,) in [0, 1]: the mean rarity of a group's clicked items, or, without a click, the mean
    popularity of its items."""
    counts = np.bincount(rows.item[rows.click > 0], minlength=int(rows.item.max()) + 1 if len(rows) else 1)
    pop = counts[rows.item].astype(np.float64)
    pct = (rankdata(pop) - 0.5) / max(len(pop), 1)  # 0 rare .. 1 popular; ties share their mean rank
    group_of = np.repeat(np.arange(len(groups)), groups.sizes)
    clicked = rows.click > 0
    n_clicks = np.bincount(group_of, weights=clicked, minlength=len(groups))
    rarity_of_clicks = np.bincount(group_of, weights=np.where(clicked, 1.0 - pct, 0.0), minlength=len(groups))
    popularity = np.bincount(group_of, weights=pct, minlength=len(groups)) / np.maximum(groups.sizes, 1)
    return np.where(n_clicks > 0, rarity_of_clicks / np.maximum(n_clicks, 1), popularity)
