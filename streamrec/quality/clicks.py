"""Per-click ranks of every ranker, kept so that any two can be compared on the same clicks.

Running totals would give each ranker's recall, but not a paired comparison (which rankers hit the
same clicks) nor an interval that resamples users (one user's clicks are not independent draws).
So each scored click keeps who clicked and each ranker's rank of the clicked item (-1: a miss by
the served rule -- excluded, not yet in the catalogue, or not among the ranker's candidates), and
figures are computed after the fact, for the whole replay or any part of it.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable

import numpy as np

from stream.evaluation.paired import Lead, cluster_interval, paired_lead, ratio, user_sums

NOT_SCORED = -2  # the ranker was not asked about this click (e.g. before it existed)


class RankLog:
    def __init__(self, rankers: Iterable[str] = ()) -> None:
        self._user_index: dict[str, int] = {}
        self.users = array("q")
        self.ranks: dict[str, array] = {name: array("i") for name in rankers}

    def add(self, user_id: str, ranks: dict[str, int | None]) -> None:
        """One scored click: each ranker's 0-based rank of its item (None: a miss)."""
        for name in ranks.keys() - self.ranks.keys():  # a ranker first heard of now
            self.ranks[name] = array("i", [NOT_SCORED] * len(self.users))
        self.users.append(self._user_index.setdefault(user_id, len(self._user_index)))
        for name, column in self.ranks.items():
            rank = ranks.get(name, NOT_SCORED)
            column.append(-1 if rank is None else rank)

    def __len__(self) -> int:
        return len(self.users)

    def _columns(self, name: str, part: slice) -> tuple[np.ndarray, np.ndarray]:
        """(clicks,) ranks and (clicks,) users of the clicks in ``part`` that ``name`` was asked about."""
        ranks = np.frombuffer(self.ranks[name], dtype=np.int32)[part]
        users = np.frombuffer(self.users, dtype=np.int64)[part]
        asked = ranks != NOT_SCORED
        return ranks[asked], users[asked]

    def select(self, rows: np.ndarray) -> RankLog:
        """The log of ``rows`` (click indices, in their order and as often as given), for figures only:
        another event credited with its click's ranks (a conversion, ``streamrec.quality.conversions``)."""
        rows = np.asarray(rows, dtype=np.int64)
        out = RankLog()
        out.users = array("q", np.frombuffer(self.users, dtype=np.int64)[rows].tobytes())
        for name, column in self.ranks.items():
            out.ranks[name] = array("i", np.frombuffer(column, dtype=np.int32)[rows].tobytes())
        return out

    def hits(self, name: str, k: int, part: slice = slice(None)) -> np.ndarray:
        """(clicks,) bool over every click in ``part``: the ranker had the item in its top k."""
        return _hits(np.frombuffer(self.ranks[name], dtype=np.int32)[part], k)

    def gains(self, name: str, k: int, part: slice = slice(None)) -> np.ndarray:
        """(clicks,) NDCG@k term of every click in ``part``: 1/log2(rank + 2) for a hit, else 0."""
        return _gains(np.frombuffer(self.ranks[name], dtype=np.int32)[part], k)

    def figures(
        self, name: str, k: int, part: slice = slice(None), interval: bool = True, resamples: int = 9999
    ) -> dict[str, object]:
        """Recall@k and NDCG@k (one relevant item: 1/log2(rank + 2) for a hit), each with a 95 %
        interval that resamples users when ``interval``."""
        ranks, users = self._columns(name, part)
        hit, gain = _hits(ranks, k), _gains(ranks, k)
        out: dict[str, object] = {"clicks": len(ranks), "users": len(np.unique(users))}
        for metric, values in ((f"recall@{k}", hit.astype(np.float64)), (f"ndcg@{k}", gain)):
            if not len(ranks):
                out[metric] = None
                continue
            out[metric] = round(float(values.mean()), 4)
            if interval:
                ci = cluster_interval(user_sums(users, values, np.ones(len(values))), ratio, resamples=resamples)
                out[f"{metric}_interval"] = [round(ci.low, 4), round(ci.high, 4)]
        return out

    def lead(
        self, a: str, b: str, k: int, part: slice = slice(None), resamples: int = 9999, ndcg: bool = False
    ) -> Lead:
        """Recall@k (NDCG@k if ``ndcg``) of ranker a minus b's, on the clicks of ``part`` both were
        asked about."""
        ra = np.frombuffer(self.ranks[a], dtype=np.int32)[part]
        rb = np.frombuffer(self.ranks[b], dtype=np.int32)[part]
        both = (ra != NOT_SCORED) & (rb != NOT_SCORED)
        users = np.frombuffer(self.users, dtype=np.int64)[part][both]
        values = self.gains if ndcg else self.hits
        return paired_lead(values(a, k, part)[both], values(b, k, part)[both], users, resamples=resamples)


def _hits(ranks: np.ndarray, k: int) -> np.ndarray:
    """(clicks,) ranks (-1: a miss) -> (clicks,) bool: in the top k."""
    hit: np.ndarray = (ranks >= 0) & (ranks < k)
    return hit


def _gains(ranks: np.ndarray, k: int) -> np.ndarray:
    """(clicks,) ranks (-1: a miss) -> (clicks,) NDCG@k terms: 1/log2(rank + 2) for a hit, else 0."""
    gains: np.ndarray = np.where(_hits(ranks, k), 1.0 / np.log2(np.maximum(ranks, 0) + 2.0), 0.0)
    return gains
