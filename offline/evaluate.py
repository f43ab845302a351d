"""Offline metrics on the test window, as defined in docs/explanation/definitions.md.

* ``auc`` / ``logloss``: pointwise, over labelled rows.
* ``ranking``: for each sampled test click, score every item logged before the click for that user
  with the history as it was just before the click, drop the items the user clicked before, and
  find the clicked item's rank: Recall@K and NDCG@K = 1/log2(rank + 2) on a hit. Pointwise scoring
  (``Scorer`` on a batch of rows) is kept apart from this full-catalogue loop.
* ``popularity_gains``: the baseline, ranking by the clicks logged so far, as the stream learners do.
* ``share_interval``: how far a ratio of two models' NDCG on the same clicks can be trusted (their
  difference is ``stream.evaluation.paired.lead_interval``), from the project's one bootstrap, which
  resamples users with all their clicks: one user's clicks are not independent draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.stats import rankdata

from offline.features import ContentTables
from offline.samples import TestClick
from stream.evaluation.paired import Interval, cluster_interval, ratio, user_sums
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


def click_gains(
    score: Scorer, clicks: list[TestClick], tables: ContentTables, k: int = 10, clicks_per_call: int = 8
) -> np.ndarray:
    """(n_clicks,) NDCG@k of each click: 1/log2(rank + 2) if its item ranks in the top k of the items
    logged before it less the user's clicked ones, else 0. Recall@k is the share of non-zero gains.

    ``clicks_per_call`` catalogues are scored in one call (larger batches, fewer calls: the
    per-call overhead dominated small models); the scores do not depend on the grouping.
    """
    gains = np.zeros(len(clicks))
    n_items = len(tables.item_tokens) - 1
    for start in range(0, len(clicks), clicks_per_call):
        group = clicks[start : start + clicks_per_call]
        batches = [tables.catalogue_for(c.user, c.recent) for c in group]
        scores = score({name: np.concatenate([b[name] for b in batches]) for name in batches[0]})
        for j, c in enumerate(group):
            gains[start + j] = gain(scores[j * n_items : (j + 1) * n_items], c, k)  # item i + 1 at position i
    return gains


def gain(scores: np.ndarray, click: TestClick, k: int = 10) -> float:
    """One click's NDCG@k term from (n_items,) scores of item rows 1..n: ranked among the items logged
    before the click (the first ``click.known``), its clicked items excluded (``rank_of``)."""
    rank = rank_of(scores[: click.known], click.item - 1, (click.seen - 1).tolist())
    return 1.0 / math.log2(rank + 2) if rank is not None and rank < k else 0.0


def popularity_gains(click_log: np.ndarray, clicks: list[TestClick], k: int = 10) -> np.ndarray:
    """(n_clicks,) NDCG@k gains of ranking by clicks so far: at each click, every click logged before
    it (``click_log[:clicks_before]``, its own window's earlier clicks included), as the stream's
    test-then-learn popularity does. ``clicks`` in time order; click_log: (all clicks,) item rows."""
    counts = np.zeros(max([int(click_log.max(initial=0)), *(c.known for c in clicks)]) + 1)
    counted = 0
    gains = np.zeros(len(clicks))
    for n, c in enumerate(clicks):
        if c.clicks_before < counted:
            raise ValueError("popularity_gains needs the clicks in time order")
        np.add.at(counts, click_log[counted : c.clicks_before], 1.0)
        counted = c.clicks_before
        gains[n] = gain(counts[1:], c, k)
    return gains


def ranking_figures(gains: np.ndarray, k: int = 10) -> dict[str, float]:
    """Per-click gains (``click_gains``) -> Recall@k and NDCG@k."""
    if not len(gains):
        return {f"recall@{k}": 0.0, f"ndcg@{k}": 0.0}
    return {f"recall@{k}": float(np.count_nonzero(gains) / len(gains)), f"ndcg@{k}": float(gains.mean())}


def ranking(score: Scorer, clicks: list[TestClick], tables: ContentTables, k: int = 10) -> dict[str, float]:
    """Recall@k and NDCG@k over ``clicks``, each ranked against the unseen items logged before it."""
    return ranking_figures(click_gains(score, clicks, tables, k), k)


def share_interval(gains: np.ndarray, reference: np.ndarray, users: np.ndarray, seed: int = 0) -> Interval:
    """sum(gains) / sum(reference) over the same (clicks,) gains, with its 95 % interval resampling
    ``users`` (clicks,) as clusters: one model's NDCG as a share of another's."""
    return cluster_interval(user_sums(users, gains, reference), ratio, seed=seed)
