"""What the demo reports: a progress line while it runs, and at the end its summary, including what
the distilled model changed (the share of recommendations it scored, its blend weight, when it
started serving)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from serving.freshness import FreshnessProbe
from serving.metrics import FALLBACK_REASONS
from stream.events import EVENT_TYPES
from stream.processor import LEARNERS
from streamrec.demo_parts import EventFeed, HttpClient
from streamrec.stack import ServingStack


def percentiles(values: list[float]) -> dict[str, Any]:
    """p50 and p99 (ms, rounded) and the count: the demo's one way to quote a latency."""
    if not values:
        return {"p50": None, "p99": None, "n": 0}
    p50, p99 = np.percentile(values, [50, 99])
    return {"p50": round(float(p50), 2), "p99": round(float(p99), 2), "n": len(values)}


class ModelEffect:
    """Follows the served model version and how many top-k computations it scored."""

    def __init__(self, stack: ServingStack) -> None:
        self.stack = stack
        self.versions: list[int] = []
        self.first_served_s: float | None = None
        self.first_served_sent: int | None = None
        self._at_first = (0.0, 0.0)  # (computations, without the model) when the first model came
        self._started = time.perf_counter()
        self.weights: list[float] = []

    def computations(self) -> tuple[float, float]:
        """Top-k computations so far, and those served without the model (a fallback)."""
        value = self.stack.registry.get_sample_value
        total = value("streamrec_scoring_duration_seconds_count") or 0.0
        fallbacks = sum(value("streamrec_scoring_fallbacks_total", {"reason": r}) or 0.0 for r in FALLBACK_REASONS)
        return total, fallbacks

    def observe(self, sent: int) -> int | None:
        """The version now serving if it is new since the last call, else None."""
        version = self.stack.scorer.version
        if version is None or (self.versions and self.versions[-1] == version):
            return None
        if not self.versions:
            self.first_served_s = round(time.perf_counter() - self._started, 1)
            self.first_served_sent = sent
            self._at_first = self.computations()
        self.versions.append(version)
        return version

    def share_scored(self, since_first: bool = False) -> float | None:
        """Share of top-k computations the model scored (since it first served, or overall)."""
        total, fallbacks = self.computations()
        if since_first:
            total, fallbacks = total - self._at_first[0], fallbacks - self._at_first[1]
        return round(1.0 - fallbacks / total, 4) if total and self.versions else None

    def keep_weights(self) -> None:
        """The student's weight in each owned partition's blend (learned from clicks as they came)."""
        owned = list(self.stack.worker.owned.values())
        self.weights = [round(o.processor.blend.weights.get("student", 0.0), 4) for o in owned]

    def summary(self) -> dict[str, Any]:
        return {
            "versions_served": self.versions,
            "first_served_after_s": self.first_served_s,
            "events_sent_when_first_served": self.first_served_sent,
            "share_of_recommendations_scored": self.share_scored(),
            "share_scored_since_first_served": self.share_scored(since_first=True),
            "blend_weight_configured": self.stack.cfg.serving.blend.student,
            "blend_weight_learned": {
                "mean": round(float(np.mean(self.weights)), 4) if self.weights else None,
                "per_partition": self.weights,
            },
        }


class Progress:
    """The counts the demo logs while it runs."""

    def __init__(
        self, stack: ServingStack, feed: EventFeed, effect: ModelEffect, client: HttpClient | None = None
    ) -> None:
        self.stack, self.feed, self.effect, self.client = stack, feed, effect, client

    def applied_offsets(self) -> int:
        """Events the worker is past (next offsets of its partitions)."""
        return sum(o.next_offset for o in list(self.stack.worker.owned.values()))

    def counts(self) -> str:
        return f"{self.feed.sent:,} events sent, {self.applied_offsets():,} applied"

    def line(self, elapsed_s: float) -> str:
        value = self.stack.registry.get_sample_value
        done = self.applied_offsets()
        version = self.effect.versions[-1] if self.effect.versions else None
        share = self.effect.share_scored(since_first=True)
        model = f"v{version} (scored {share:.0%})" if version is not None and share is not None else "-"
        recall = value("streamrec_prequential_recall_ratio", {"learner": "item_knn"}) or 0.0
        return (
            f"sent {self.feed.sent:,}  applied {done:,} ({done / max(elapsed_s, 1e-9):,.0f}/s)  "
            f"published {int(value('streamrec_recommendations_published_total') or 0):,}  model {model}  "
            f"http {len(self.client.latencies_ms) if self.client else 0:,}  item_knn recall@10 {recall:.3f}"
        )


def prequential(stack: ServingStack) -> dict[str, dict[str, float]]:
    value = stack.registry.get_sample_value
    return {
        name: {
            "recall@10": round(value("streamrec_prequential_recall_ratio", {"learner": name}) or 0, 4),
            "ndcg@10": round(value("streamrec_prequential_ndcg_ratio", {"learner": name}) or 0, 4),
        }
        for name in LEARNERS
    }


def summarise(
    stack: ServingStack,
    feed: EventFeed,
    effect: ModelEffect,
    probe: FreshnessProbe,
    client: HttpClient | None,
    took_s: float,
) -> dict[str, Any]:
    """The demo's figures, printed as its result."""
    value = stack.registry.get_sample_value
    applied = int(sum(value("streamrec_events_processed_total", {"type": t}) or 0 for t in EVENT_TYPES))
    summary: dict[str, Any] = {
        "events_produced": feed.produced,
        "events_applied": applied,
        "seconds": round(took_s, 1),
        "events_per_s": round(applied / took_s) if took_s else 0,
        "dead_lettered": int(
            sum(
                s.value
                for m in stack.worker.metrics.dead_lettered.collect()
                for s in m.samples
                if s.name.endswith("_total")
            )
        ),
        "prequential": prequential(stack),
        "model_versions_served": effect.versions,
        "model": effect.summary(),
        "recommendations_published": int(value("streamrec_recommendations_published_total") or 0),
        "blend_updates": int(value("streamrec_blend_updates_total") or 0),  # clicks the serving blend learned from
        "scoring_ms": percentiles([s * 1000.0 for s in stack.scorer.recent_seconds]),
        "freshness_ms": percentiles(probe.samples_ms),
    }
    if client is not None:
        summary["http_ms"] = {
            **percentiles(client.latencies_ms),
            "failed": len(client.failures),
            "first_failures": client.failures[:3],
        }
    return summary
