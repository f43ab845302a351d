"""The worker's gauges: consumer lag per partition and the online learners' pooled figures."""

import contextlib
import time

import msgspec

from stream.evaluation.replay import summarise
from stream.metrics import WorkerMetrics
from stream.owned_partition import OwnedPartition
from stream.processor import PartitionProcessor


class WorkerReport:
    """Lag comes from librdkafka's statistics (high watermarks it learns from fetches, handed to
    ``on_stats``): no extra broker round-trips on the hot path."""

    def __init__(self, topic: str, metrics: WorkerMetrics) -> None:
        self.topic = topic
        self.metrics = metrics
        self._high_watermarks: dict[int, int] = {}
        self._last_report = 0.0

    def on_stats(self, stats_json: str) -> None:
        """librdkafka's ``stats_cb``."""
        topic = msgspec.json.decode(stats_json).get("topics", {}).get(self.topic, {})
        for key, part in topic.get("partitions", {}).items():
            if int(key) >= 0 and part.get("hi_offset", -1) >= 0:
                self._high_watermarks[int(key)] = part["hi_offset"]

    def forget(self, partition: int) -> None:
        """A partition released: its lag is no longer this worker's to report."""
        self._high_watermarks.pop(partition, None)
        with contextlib.suppress(KeyError):  # never reported
            self.metrics.lag.remove(str(partition))

    def report(self, owned: dict[int, OwnedPartition]) -> None:
        """At most once a second: lag, the learners' figures pooled over the owned partitions, state sizes."""
        now = time.monotonic()
        if now - self._last_report < 1.0:
            return
        self._last_report = now
        for partition, part in owned.items():
            high = self._high_watermarks.get(partition)
            if high is not None:
                self.metrics.lag.labels(str(partition)).set(max(0, high - part.next_offset))
        processors = [o.processor for o in owned.values()]
        if processors:
            self._learner_figures(processors)
        self.metrics.snapshot_times([o.snapshot_time for o in owned.values()])

    def _learner_figures(self, processors: list[PartitionProcessor]) -> None:
        k = processors[0].k
        pooled = summarise(processors, k=k, digits=None)
        for name, figures in pooled.items():
            for gauge, key in (
                (self.metrics.recall, f"recall@{k}"),
                (self.metrics.ndcg, f"ndcg@{k}"),
                (self.metrics.pairwise, "pairwise_accuracy"),
            ):
                if figures[key] is not None:
                    gauge.labels(name).set(figures[key])
        if pooled["click_model"]["logloss"] is not None:
            self.metrics.logloss.set(pooled["click_model"]["logloss"])
        for kind in ("users", "items", "covis_items"):
            self.metrics.state_entries.labels(kind).set(sum(p.state.sizes()[kind] for p in processors))
