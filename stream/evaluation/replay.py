"""Prequential replay of a source in-process (no broker): the figures of ``streamrec eval prequential``.

With ``partitions > 1`` users are split by a hash of their id, each shard with its own state, as
the workers would hold it: the difference to ``partitions=1`` measures what the per-partition
item-side approximation costs (docs/explanation/design.md, "Where state lives").
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterable
from typing import Any

from stream.config import Config
from stream.evaluation.prequential import ServedClicks
from stream.events import Event
from stream.processor import LEARNERS, PartitionProcessor


def replay(
    events: Iterable[Event],
    cfg: Config,
    partitions: int = 1,
    k: int = 10,
    progress: Callable[[int, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    shards = [PartitionProcessor(cfg, k) for _ in range(partitions)]
    started = time.perf_counter()
    n = 0
    for event in events:
        shard = shards[zlib.crc32(event.user_id.encode()) % partitions] if partitions > 1 else shards[0]
        shard.process(event)
        n += 1
        if progress and n % 10_000 == 0:
            progress(n, summarise(shards, k))
    result = summarise(shards, k)
    result["_served_rule"] = served_rule(shards)
    result["_run"] = {"events": n, "partitions": partitions, "seconds": round(time.perf_counter() - started, 1)}
    return result


def served_rule(shards: list[PartitionProcessor]) -> dict[str, Any]:
    """The share of scored clicks the served rule made misses of, beside the figures they qualify."""
    return ServedClicks.pooled([s.served for s in shards], shards[0].cfg.serving.exclude_seen)


def summarise(shards: list[PartitionProcessor], k: int = 10, digits: int | None = 4) -> dict[str, Any]:
    """Every learner's prequential figures pooled over partitions (weighted by their counts)."""

    def r(x: float) -> float:
        return round(x, digits) if digits is not None else x

    out: dict[str, Any] = {}
    for name in LEARNERS:
        n = sum(s.scores[name].n for s in shards)
        pairs = sum(s.pairwise[name].n for s in shards if name in s.pairwise)
        out[name] = {
            f"recall@{k}": r(sum(s.scores[name].hits for s in shards) / n) if n else None,
            f"ndcg@{k}": r(sum(s.scores[name].ndcg for s in shards) / n) if n else None,
            "scored_clicks": n,
            "pairwise_accuracy": r(sum(s.pairwise[name].correct for s in shards if name in s.pairwise) / pairs)
            if pairs
            else None,
        }
        if name in shards[0].drift:
            detections = sorted(d for s in shards for d in s.drift[name].detections)
            out[name]["drift_detections"] = len(detections)
            out[name]["first_drift_at_event"] = detections[0] if detections else None
    weight = sum(s.click_logloss.weight for s in shards)
    out["click_model"]["logloss"] = r(sum(s.click_logloss.total for s in shards) / weight) if weight else None
    return out
