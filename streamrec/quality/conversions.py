"""Protocol (a) for conversions: was the converted item in each ranker's top k when it was clicked?

A conversion cannot be ranked afresh: it arrives after its click, when the served rule already
excludes the item as seen. So each conversion is credited with the ranks its click got. The match:
the **latest click before it** in replay order **of the same user and item** that protocol (a)
scored (an applied click: neither late nor a duplicate). A conversion without one (no click on the
item by that user, or only a late or duplicate one) is counted as unmatched and left out of every
figure, since no ranker was asked about it; a late or duplicate conversion is not counted at all.
Two conversions after one click both take its ranks.

Figures are those of the clicks' ``RankLog`` on the matched rows -- recall@k, NDCG@k and the paired
lead over popularity, each resampling users -- and, where conversions carry a ``value``, the
value-weighted recall: the share of conversion value whose item was in the top k.
"""

from __future__ import annotations

from array import array
from typing import Any

import numpy as np

from stream.evaluation.paired import cluster_interval, ratio, user_sums
from stream.events import Event
from streamrec.quality.clicks import NOT_SCORED, RankLog


class ConversionLog:
    """Each counted conversion's click (its row in the ``RankLog``) and value, kept in replay order."""

    def __init__(self) -> None:
        self._latest: dict[tuple[str, str], int] = {}
        self.rows = array("q")
        self.values = array("d")
        # Per unmatched conversion, the scored clicks before it: which reported part it falls in.
        self.unmatched = array("q")

    def click(self, event: Event, row: int) -> None:
        """A click scored as ``row`` of the RankLog: the one later conversions of its item match."""
        self._latest[(event.user_id, event.item_id)] = row

    def conversion(self, event: Event, clicks: int) -> None:
        """An applied conversion, after ``clicks`` scored clicks."""
        row = self._latest.get((event.user_id, event.item_id))
        if row is None:
            self.unmatched.append(clicks)
            return
        self.rows.append(row)
        self.values.append(event.value or 0.0)

    def __len__(self) -> int:
        return len(self.rows) + len(self.unmatched)

    def figures(
        self, log: RankLog, k: int, part: slice = slice(None), baseline: str = "popularity", resamples: int = 9999
    ) -> dict[str, Any]:
        """Every ranker's figures on the conversions whose click lies in ``part`` of the log."""
        start, stop, _ = part.indices(len(log))
        rows = np.frombuffer(self.rows, dtype=np.int64)
        inside = (rows >= start) & (rows < stop)
        # An unmatched conversion falls in the part of the click before it (the first, before any).
        unmatched = np.maximum(np.frombuffer(self.unmatched, dtype=np.int64) - 1, 0)
        sub, values = log.select(rows[inside]), np.frombuffer(self.values)[inside]
        valued = bool(values.any())
        recall = f"recall@{k}"
        rankers: dict[str, dict[str, Any]] = {}
        for name in sub.ranks:
            f = sub.figures(name, k, resamples=resamples)
            f["conversions"] = f.pop("clicks")
            if not f["conversions"]:
                continue
            if name != baseline and baseline in sub.ranks:
                lead = sub.lead(name, baseline, k, resamples=resamples).to_dict()
                lead["conversions"] = lead.pop("clicks")
                f[f"{recall}_lead_over_{baseline}"] = lead
            if valued:
                f.update(_value_recall(sub, name, k, values, resamples))
            rankers[name] = f
        return {
            "conversions": int(inside.sum()),
            "unmatched": int(((unmatched >= start) & (unmatched < stop)).sum()),
            "valued": valued,
            "rankers": rankers,
        }


def _value_recall(sub: RankLog, name: str, k: int, values: np.ndarray, resamples: int) -> dict[str, Any]:
    """The share of conversion value whose item was in the top k, with its interval over users."""
    asked = np.frombuffer(sub.ranks[name], dtype=np.int32) != NOT_SCORED
    hit, value = sub.hits(name, k)[asked], values[asked]
    users = np.frombuffer(sub.users, dtype=np.int64)[asked]
    ci = cluster_interval(user_sums(users, hit * value, value), ratio, resamples=resamples)
    key = f"value_recall@{k}"
    if np.isnan(ci.estimate):
        return {key: None}
    interval = None if np.isnan(ci.low) else [round(ci.low, 4), round(ci.high, 4)]
    return {key: round(ci.estimate, 4), f"{key}_interval": interval}
