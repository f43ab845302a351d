"""Prometheus metrics of a stream worker. The registry is injected so tests can read their own."""

from __future__ import annotations

import time

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)

from stream.events import EVENT_TYPES, REJECT_REASONS
from stream.processor import DRIFT_MONITORED

# Batches take from ~1 ms (a few events) to seconds (a full batch with full-catalogue scoring).
BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def process_registry() -> CollectorRegistry:
    """A registry for a process to expose, with prometheus-client's process (CPU, memory, open
    files), GC and platform collectors: they register themselves on the default REGISTRY only, and
    every process here serves a registry of its own so that tests can read theirs."""
    registry = CollectorRegistry()
    for collector in (PROCESS_COLLECTOR, GC_COLLECTOR, PLATFORM_COLLECTOR):
        registry.register(collector)
    return registry


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.consumed = Counter(
            "streamrec_events_consumed_total", "Messages read from the events topic", registry=registry
        )
        self.processed = Counter(
            "streamrec_events_processed_total",
            "Events applied to state and learners, by event type",
            ["type"],
            registry=registry,
        )
        self.duplicates = Counter(
            "streamrec_events_duplicate_total",
            "Events dropped because their event_id was seen before",
            registry=registry,
        )
        self.dead_lettered = Counter(
            "streamrec_events_dead_lettered_total",
            "Messages sent to the dead-letter topic, by reason",
            ["reason"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "streamrec_batch_duration_seconds",
            "Time to process one consumed batch",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.lag = Gauge(
            "streamrec_consumer_lag_messages",
            "High watermark minus next offset to process",
            ["partition"],
            registry=registry,
        )
        self.assigned = Gauge("streamrec_assigned_partitions", "Partitions this worker owns", registry=registry)
        self.state_entries = Gauge(
            "streamrec_state_entries", "Entries held in feature state", ["kind"], registry=registry
        )
        self.recall = Gauge(
            "streamrec_prequential_recall_ratio",
            "Prequential Recall@10 since start, per learner",
            ["learner"],
            registry=registry,
        )
        self.ndcg = Gauge(
            "streamrec_prequential_ndcg_ratio",
            "Prequential NDCG@10 since start, per learner",
            ["learner"],
            registry=registry,
        )
        self.pairwise = Gauge(
            "streamrec_prequential_pairwise_accuracy_ratio",
            "Share of clicks whose item a learner scored above a sampled other item",
            ["learner"],
            registry=registry,
        )
        self.logloss = Gauge(
            "streamrec_prequential_logloss", "Prequential log-loss of the click model", registry=registry
        )
        self.drift = Counter(
            "streamrec_drift_detected_total",
            "Drift detections on a learner's prequential loss",
            ["learner"],
            registry=registry,
        )
        self.snapshot_seconds = Histogram(
            "streamrec_snapshot_duration_seconds", "Time to write one partition checkpoint", registry=registry
        )
        self.snapshot_failures = Counter(
            "streamrec_snapshot_failures_total", "Checkpoints that could not be written", registry=registry
        )
        self.last_snapshot = Gauge(
            "streamrec_last_snapshot_timestamp_seconds",
            "Unix time of the oldest partition's last successful snapshot",
            registry=registry,
        )
        self.snapshot_age = Gauge(
            "streamrec_snapshot_age_seconds",
            "Seconds since the oldest owned partition's last snapshot",
            registry=registry,
        )
        # Every label value of the fixed sets exported from the start, at zero: a rate over a series
        # that does not exist yet is no data, not 0, and dashboards and alerts would show nothing.
        for reason in REJECT_REASONS:
            self.dead_lettered.labels(reason)
        for event_type in EVENT_TYPES:
            self.processed.labels(event_type)
        for learner in DRIFT_MONITORED:
            self.drift.labels(learner)
        self._oldest_snapshot: float | None = None
        self.snapshot_age.set_function(
            lambda: 0.0 if self._oldest_snapshot is None else time.time() - self._oldest_snapshot
        )

    def snapshot_times(self, times: list[float]) -> None:
        self._oldest_snapshot = min(times) if times else None
        if times:
            self.last_snapshot.set(min(times))
