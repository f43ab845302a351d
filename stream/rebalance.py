"""The consumer group's rebalance callbacks (run inside ``consume()``): restoring a partition from its
newest snapshot when it is assigned, checkpointing it when it is revoked, dropping it when lost."""

import functools
import logging
import os
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient

from stream.checkpoint import Checkpointer
from stream.config import Config
from stream.metrics import WorkerMetrics
from stream.outbox import Outbox
from stream.owned_partition import OwnedPartition
from stream.processor import PartitionProcessor
from stream.snapshot import SnapshotStore
from stream.training_log import TrainingLog

log = logging.getLogger(__name__)


class Rebalance:
    """Fills and empties the worker's ``owned`` map (shared, not copied) as the group assigns partitions.

    ``admin``, when given, asks for the topic's id on assignment, so that snapshots taken on an
    earlier topic of the same name are not resumed at offsets of a log that is gone.
    """

    def __init__(
        self,
        cfg: Config,
        owned: dict[int, OwnedPartition],
        checkpointer: Checkpointer,
        outbox: Outbox,
        training_log: TrainingLog,
        metrics: WorkerMetrics,
        admin: AdminClient | None,
        release: Callable[[int], None],
    ) -> None:
        self.cfg, self.topic, self.owned = cfg, cfg.kafka.events_topic, owned
        self.checkpointer, self.outbox, self.training_log, self.metrics = checkpointer, outbox, training_log, metrics
        self.snapshots: SnapshotStore = checkpointer.snapshots
        self.admin = admin
        self.release = release

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        topic_id = self._topic_id()
        for tp in partitions:
            proc, offset = self.restore(tp.partition)
            offset = self._same_log(tp.partition, proc, offset, topic_id)
            # Events at or after ``offset`` will be applied (and logged) again. Without a snapshot,
            # replay starts at the low watermark: segments of events Kafka no longer holds stay.
            keep_below = offset if offset > 0 else self._low_watermark(consumer, tp.partition)
            self.training_log.discard_from(tp.partition, keep_below)
            self.owned[tp.partition] = OwnedPartition(proc, offset, offset)
            tp.offset = offset if offset > 0 else OFFSET_BEGINNING
        consumer.incremental_assign(partitions)
        self.metrics.assigned.set(len(self.owned))

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            if tp.partition in self.owned:
                self.checkpointer.checkpoint(tp.partition, still_owned=True)  # the callback proves ownership
                self.release(tp.partition)

    def on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Someone else may own these already: writing a snapshot now could overwrite theirs.
        for tp in partitions:
            self.release(tp.partition)

    def restore(self, partition: int) -> tuple[PartitionProcessor, int]:
        """The newest snapshot that verifies and loads, else a fresh processor at offset 0."""
        hook = functools.partial(self.outbox.signal_drift, partition)
        for snap in self.snapshots.candidates(self.topic, partition):
            try:
                proc = PartitionProcessor.from_state(self.cfg, snap.state, on_drift=hook)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning(
                    "snapshot of %s[%d] at %d does not load (%s); trying an older one",
                    self.topic,
                    partition,
                    snap.offset,
                    exc,
                )
                continue
            log.info("assigned %s[%d]: restored the snapshot at offset %d", self.topic, partition, snap.offset)
            return proc, snap.offset
        log.info("assigned %s[%d]: no snapshot, rebuilding from the beginning", self.topic, partition)
        return PartitionProcessor(self.cfg, on_drift=hook), 0

    def _topic_id(self) -> str | None:
        """Kafka's id of the events topic (new for a topic created anew), or None if unknown."""
        if self.admin is None:
            return None
        try:
            described = self.admin.describe_topics(TopicCollection([self.topic]), request_timeout=5)
            uuid = described[self.topic].result().topic_id
        except Exception as exc:  # unknown: trust the snapshots, as before topic ids were kept
            log.warning("no topic id for %s (%s); not checking that the snapshots belong to its log", self.topic, exc)
            return None
        finally:
            self.admin.poll(0)  # hands librdkafka's log lines of this call to logging
        high, low = uuid.get_most_significant_bits() % 2**64, uuid.get_least_significant_bits() % 2**64
        return f"{high:016x}{low:016x}" if high or low else None

    def _same_log(self, partition: int, proc: PartitionProcessor, offset: int, topic_id: str | None) -> int:
        """The offset to resume at: ``offset``, unless the snapshot was taken on an earlier topic of
        the same name. Then its offset points into a log that is gone, and the new log's events up
        to it would be skipped: keep the state as a snapshot at offset 0, move the old snapshots and
        training-log segments aside (never deleted), and start at the new log's beginning."""
        folder = self.snapshots.root / self.topic / str(partition)
        marker = folder / "topic-id"
        recorded = marker.read_text().strip() if marker.exists() else None
        if topic_id is None or recorded == topic_id:
            return offset
        if recorded is not None and offset > 0:
            self._set_aside(partition, proc, recorded)
            log.warning(
                "%s[%d] is a new topic (id %s, the snapshots were taken on %s): its log restarts at "
                "0, behind the snapshot at %d; keeping the state and applying the new log from its "
                "beginning (old snapshots and training log moved to replaced-%s)",
                self.topic,
                partition,
                topic_id,
                recorded,
                offset,
                recorded,
            )
            offset = 0
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".topic-id.{os.getpid()}.tmp"
        tmp.write_text(topic_id + "\n")
        os.replace(tmp, marker)
        return offset

    def _set_aside(self, partition: int, proc: PartitionProcessor, recorded: str) -> None:
        """Move the old topic's snapshots and training-log segments to ``replaced-<id>`` and keep
        the state as a snapshot at offset 0 of the new log."""
        folder = self.snapshots.root / self.topic / str(partition)
        aside = folder / f"replaced-{recorded}"
        aside.mkdir(exist_ok=True)
        for snap in folder.glob("*.snap"):
            os.replace(snap, aside / snap.name)
        segments = self.training_log.partition_dir(partition)
        if segments.exists():
            os.replace(segments, segments.parent / f"replaced-{recorded}-{segments.name}")
        self.snapshots.write(self.topic, partition, 0, proc.to_state())

    def _low_watermark(self, consumer: Consumer, partition: int) -> int:
        try:
            low, _ = consumer.get_watermark_offsets(TopicPartition(self.topic, partition), timeout=5)
            return max(low, 0)
        except Exception as exc:  # unknown: keep everything rather than delete history
            log.warning("no low watermark for %s[%d] (%s); keeping its training log", self.topic, partition, exc)
            return 2**63 - 1
