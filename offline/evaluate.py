"""Offline metrics on the test window, as defined in shared/NOTES.md.

* ``auc`` / ``logloss``: pointwise, over labelled rows.
* ``ranking``: for each sampled test click, score every item of the catalogue for that user with
  the history as it was just before the click, drop the items the user clicked before, and find the
  clicked item's rank: Recall@K and NDCG@K = 1/log2(rank + 2) on a hit. Pointwise scoring
  (``Scorer`` on a batch of rows) is kept apart from this full-catalogue loop.
* ``share_interval``: how far a ratio of two models' NDCG can be trusted on the clicks sampled.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.stats import rankdata

from offline.features import ContentTables
from offline.samples import TestClick
from stream.learners.base import rank_of

# A pointwise scorer: named int64 inputs (see offline.features) -> (B,) scores, higher is better.
Scorer = Callable[[dict[str, np.ndarray]], np.ndarray]


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties averaged); nan with one class only."""
    pos = labels > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def logloss(probabilities: np.ndarray, labels: np.ndarray, eps: float = 1e-7) -> float:
    p = np.clip(probabilities, eps, 1 - eps)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def sample_clicks(clicks: list[TestClick], limit: int, seed: int = 7) -> list[TestClick]:
    """A deterministic sample (in time order) of at most ``limit`` clicks; 0 keeps all."""
    if not limit or len(clicks) <= limit:
        return clicks
    keep = np.sort(np.random.default_rng(seed).choice(len(clicks), limit, replace=False))
    return [clicks[i] for i in keep]


def click_gains(score: Scorer, clicks: list[TestClick], tables: ContentTables, k: int = 10,
                clicks_per_call: int = 8) -> np.ndarray:
    """(n_clicks,) NDCG@k of each click: 1/log2(rank + 2) if its item ranks in the top k of the unseen
    catalogue, else 0. Recall@k is the share of non-zero gains.

    ``clicks_per_call`` catalogues are scored in one call (larger batches, fewer calls: the
    per-call overhead dominated small models); the scores do not depend on the grouping.
    """
    gains = np.zeros(len(clicks))
    n_items = len(tables.item_tokens) - 1
    for start in range(0, len(clicks), clicks_per_call):
        group = clicks[start: start + clicks_per_call]
        batches = [tables.catalogue_for(c.user, c.recent) for c in group]
        scores = score({name: np.concatenate([b[name] for b in batches]) for name in batches[0]})
        for j, c in enumerate(group):
            own = scores[j * n_items: (j + 1) * n_items]  # item i + 1 at position i
            rank = rank_of(own, c.item - 1, (c.seen - 1).tolist())
            if rank is not None and rank < k:
                gains[start + j] = 1.0 / math.log2(rank + 2)
    return gains


def ranking_figures(gains: np.ndarray, k: int = 10) -> dict[str, float]:
    """Per-click gains (``click_gains``) -> Recall@k and NDCG@k."""
    if not len(gains):
        return {f"recall@{k}": 0.0, f"ndcg@{k}": 0.0}
    return {f"recall@{k}": float(np.count_nonzero(gains) / len(gains)), f"ndcg@{k}": float(gains.mean())}


def ranking(score: Scorer, clicks: list[TestClick], tables: ContentTables, k: int = 10) -> dict[str, float]:
    """Recall@k and NDCG@k over ``clicks``, each ranked against the whole unseen catalogue."""
    return ranking_figures(click_gains(score, clicks, tables, k), k)


def share_interval(gains: np.ndarray, reference: np.ndarray, seed: int = 7, resamples: int = 2000,
                   level: float = 0.95) -> tuple[float, float]:
    """Paired bootstrap interval of mean(gains) / mean(reference) over the same clicks.

    Why: with a few thousand clicks a model's NDCG@10 moves by several per cent with the sample,
    so a share of the teacher's NDCG is reported with the range the click sample allows.
    """
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(gains), size=(resamples, len(gains)))
    ratios = gains[idx].mean(1) / np.maximum(reference[idx].mean(1), 1e-12)
    lo, hi = np.quantile(ratios, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def popularity_scorer(train_items: np.ndarray, train_clicks: np.ndarray) -> Scorer:
    """Clicks per item in the training window: the baseline every model must beat."""
    counts = np.bincount(train_items[train_clicks > 0]).astype(np.float64)

    def score(inputs: dict[str, np.ndarray]) -> np.ndarray:
        items = inputs["item"]
        return np.where(items < len(counts), counts[np.minimum(items, len(counts) - 1)], 0.0)

    return score
