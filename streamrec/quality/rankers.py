"""Rankers a replay asks besides the processor's learners: same-run baselines and the oracle."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from stream.events import Event
from stream.processor import PartitionProcessor


class Trending:
    """Decayed popularity: clicks so far, each counted less with age (half-life
    ``state.half_lives_s[0]``, five minutes by default): the baseline that follows what is hot now."""

    def scores(self, proc: PartitionProcessor, event: Event, known: int) -> np.ndarray:
        return proc.state.item_counters["click"].get_many(np.arange(known), event.ts / 1000.0)[0]


class NextClickOracle(Protocol):
    def next_click_scores(self, user_id: str, item_ids: list[str], ts_ms: int) -> np.ndarray: ...


class Oracle:
    """The generator's ground truth: how likely each item is to be the user's next click (true
    exposure x true click probability) -- the ceiling no ranker that learns from the log can pass."""

    def __init__(self, truth: NextClickOracle) -> None:
        self.truth = truth

    def scores(self, proc: PartitionProcessor, event: Event, known: int) -> np.ndarray:
        return self.truth.next_click_scores(event.user_id, proc.state.items.keys[:known], event.ts)
