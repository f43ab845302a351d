"""Prequential (test-then-learn) ranking metrics under the served rule (docs/protocol.md).

For each scored click the learner has already ranked the set a served request ranks: the catalogue
known before the click, less the served rule's exclusions (by default the user's clicked items). A
hit is the clicked item within the top K, and with one relevant item NDCG@K = 1/log2(rank + 2). A
click the served rule could never have recommended -- a re-click of an excluded item, or the first
click of an item nobody had seen -- is a miss, and :class:`ServedClicks` counts how many there were.
"""

from __future__ import annotations

import math
from typing import Any


class RankingScore:
    """Running Recall@K / NDCG@K for one learner, plus a windowed series for curves."""

    __slots__ = ("_win_hits", "_win_n", "hits", "k", "n", "ndcg", "series", "window")

    def __init__(self, k: int = 10, window: int = 1000) -> None:
        self.k = k
        self.window = window
        self.n = 0
        self.hits = 0
        self.ndcg = 0.0
        self._win_n = 0
        self._win_hits = 0
        self.series: list[list[float]] = []  # [events seen so far, recall over the window]

    def update(self, rank: int | None, position_in_stream: int) -> float:
        """Record one test given the clicked item's 0-based rank (None: not ranked at all).

        Returns the loss (1 - hit).
        """
        hit = rank is not None and rank < self.k
        self.n += 1
        self._win_n += 1
        if rank is not None and rank < self.k:
            self.hits += 1
            self._win_hits += 1
            self.ndcg += 1.0 / math.log2(rank + 2)
        if self._win_n == self.window:
            self.series.append([position_in_stream, self._win_hits / self._win_n])
            self._win_n = self._win_hits = 0
        return 0.0 if hit else 1.0

    @property
    def recall(self) -> float:
        return self.hits / self.n if self.n else 0.0

    @property
    def ndcg_mean(self) -> float:
        return self.ndcg / self.n if self.n else 0.0

    def summary(self) -> dict[str, float]:
        return {f"recall@{self.k}": round(self.recall, 4), f"ndcg@{self.k}": round(self.ndcg_mean, 4), "scored": self.n}

    def to_state(self) -> dict[str, Any]:
        return {s: getattr(self, s) for s in self.__slots__}

    def load_state(self, state: dict[str, Any]) -> None:
        for s in self.__slots__:
            setattr(self, s, state[s])


class PairwiseScore:
    """Share of clicks where the learner scored the clicked item above a sampled other item.

    The cheap test every learner takes on every click (a one-sample estimate of AUC); the
    full-catalogue Recall/NDCG test runs on every n-th click in the worker.
    """

    __slots__ = ("correct", "n")

    def __init__(self) -> None:
        self.n = 0
        self.correct = 0.0

    def update(self, positive: float, negative: float) -> float:
        """Record one pair; returns its loss (0 ordered right, 0.5 a tie, 1 wrong)."""
        credit = 1.0 if positive > negative else 0.5 if positive == negative else 0.0
        self.n += 1
        self.correct += credit
        return 1.0 - credit

    @property
    def value(self) -> float:
        return self.correct / self.n if self.n else 0.0

    def to_state(self) -> dict[str, float]:
        return {"n": self.n, "correct": self.correct}

    def load_state(self, state: dict[str, float]) -> None:
        self.n, self.correct = int(state["n"]), state["correct"]


class LogLoss:
    """Running (weighted) log-loss of a pointwise probability model."""

    __slots__ = ("total", "weight")

    def __init__(self) -> None:
        self.weight = 0.0
        self.total = 0.0

    def update(self, p: float, y: bool, w: float = 1.0) -> float:
        p = min(max(p, 1e-7), 1 - 1e-7)
        loss = -math.log(p if y else 1.0 - p)
        self.weight += w
        self.total += w * loss
        return loss

    @property
    def value(self) -> float:
        return self.total / self.weight if self.weight else 0.0

    def to_state(self) -> dict[str, float]:
        return {"weight": self.weight, "total": self.total}

    def load_state(self, state: dict[str, float]) -> None:
        self.weight, self.total = state["weight"], state["total"]


class ServedClicks:
    """What the served rule made of the scored clicks, reported beside every ranker's figures.

    ``reclicks``: clicks on an item the user had clicked before (misses while seen items are
    excluded); ``new_items``: clicks on an item the catalogue did not hold before that click;
    ``catalogue``: the summed size of the catalogue each scored click was ranked against.
    """

    __slots__ = ("catalogue", "new_items", "reclicks", "scored")

    def __init__(self) -> None:
        self.scored = 0
        self.reclicks = 0
        self.new_items = 0
        self.catalogue = 0

    def update(self, reclick: bool, new_item: bool, catalogue: int) -> None:
        self.scored += 1
        self.reclicks += reclick
        self.new_items += new_item
        self.catalogue += catalogue

    @staticmethod
    def pooled(tallies: list[ServedClicks], exclude_seen: bool, digits: int | None = 4) -> dict[str, Any]:
        """The figures of several partitions' tallies together."""
        scored = sum(t.scored for t in tallies)

        def per_click(x: float) -> float | None:
            return (round(x / scored, digits) if digits is not None else x / scored) if scored else None

        return {
            "scored_clicks": scored,
            "exclude_seen": exclude_seen,
            "reclick_share": per_click(sum(t.reclicks for t in tallies)),
            "new_item_share": per_click(sum(t.new_items for t in tallies)),
            "mean_catalogue_items": per_click(sum(t.catalogue for t in tallies)),
        }

    def to_state(self) -> dict[str, int]:
        return {s: getattr(self, s) for s in self.__slots__}

    def load_state(self, state: dict[str, int]) -> None:
        for s in self.__slots__:
            setattr(self, s, state[s])
