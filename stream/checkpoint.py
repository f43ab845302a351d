"""Checkpoints: when an owned partition's state and offset are made durable, and in what order."""

import logging
import time
from collections.abc import Callable

from confluent_kafka import Consumer, TopicPartition

from stream.config import WorkerConfig
from stream.metrics import WorkerMetrics
from stream.outbox import Outbox
from stream.owned_partition import OwnedPartition
from stream.snapshot import SnapshotStore
from stream.training_log import TrainingLog

log = logging.getLogger(__name__)


class Checkpointer:
    """Writes the snapshots of the partitions in ``owned`` (the worker's map, shared, not copied).

    ``release`` drops a partition found to be assigned elsewhere. Once ``failed`` is set (the loop
    died: the state may hold a half-applied event) no checkpoint is written again.
    """

    def __init__(
        self,
        topic: str,
        cfg: WorkerConfig,
        owned: dict[int, OwnedPartition],
        consumer: Consumer,
        outbox: Outbox,
        snapshots: SnapshotStore,
        training_log: TrainingLog,
        metrics: WorkerMetrics,
        release: Callable[[int], None],
    ) -> None:
        self.topic, self.cfg, self.owned, self.consumer = topic, cfg, owned, consumer
        self.outbox, self.snapshots, self.training_log, self.metrics = outbox, snapshots, training_log, metrics
        self.release = release
        self.failed = False

    def due(self) -> None:
        """Checkpoint each partition that has ``snapshot_every_events`` pending, or any pending for
        ``snapshot_every_s``."""
        now = time.time()
        for partition, owned in list(self.owned.items()):
            pending = owned.next_offset - owned.snapshot_offset
            if pending >= self.cfg.snapshot_every_events or (
                pending and now - owned.snapshot_time >= self.cfg.snapshot_every_s
            ):
                self.checkpoint(partition)

    def every(self) -> None:
        for partition in list(self.owned):
            self.checkpoint(partition)

    def checkpoint(self, partition: int, still_owned: bool = False) -> None:
        """Make everything before ``next_offset`` durable. The order is the recovery contract:

        1. flush the producer: dead letters and signals of these events are in Kafka (a refused
           one raises DeliveryFailed, which stops the worker without a checkpoint);
        2. write the training-log segment [snapshot_offset, next_offset);
        3. write the snapshot (state + next_offset) atomically -- the commit point: a crash before
           it replays from the previous snapshot (step 2's segment is discarded on restore), a crash
           after it resumes from next_offset;
        4. commit next_offset to Kafka, for lag monitoring only.
        """
        owned = self.owned.get(partition)
        if self.failed or owned is None or owned.next_offset == owned.snapshot_offset:
            return
        if not still_owned and partition not in {tp.partition for tp in self.consumer.assignment()}:
            # Lost without a callback yet (e.g. a session timeout): another worker may own it
            # and its snapshots now, so this one must not write.
            log.warning("%s[%d] is no longer assigned here; dropping it without a checkpoint", self.topic, partition)
            self.release(partition)
            return
        started = time.perf_counter()
        try:
            self.outbox.delivered(10.0)
            self.training_log.flush(partition, owned.next_offset)
            self.snapshots.write(self.topic, partition, owned.next_offset, owned.processor.to_state())
        except (OSError, RuntimeError) as exc:
            # Nothing past the last good snapshot is committed; the next checkpoint retries.
            self.metrics.snapshot_failures.inc()
            log.error("checkpoint of %s[%d] failed: %s", self.topic, partition, exc)
            return
        owned.snapshot_offset = owned.next_offset
        owned.snapshot_time = time.time()
        self.training_log.prune(partition, owned.processor.state.max_ts_ms)
        self.consumer.commit(offsets=[TopicPartition(self.topic, partition, owned.next_offset)], asynchronous=True)
        self.metrics.snapshot_seconds.observe(time.perf_counter() - started)

    def commit_snapshot_offsets(self) -> None:
        """Commit every owned partition's snapshot offset now (a restored one may never have been)."""
        offsets = [
            TopicPartition(self.topic, p, o.snapshot_offset) for p, o in self.owned.items() if o.snapshot_offset > 0
        ]
        if offsets:
            try:
                self.consumer.commit(offsets=offsets, asynchronous=False)
            except Exception as exc:  # lag reporting only: never fatal
                log.info("offset commit failed: %s", exc)
