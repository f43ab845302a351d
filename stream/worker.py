"""The consumer-group worker: an explicit poll -> process -> checkpoint loop over owned partitions.

Contract on failure:
* Every valid event is applied to its partition's state exactly once across crashes and
  rebalances: state and the offset it reflects are written together in one snapshot, and a
  (re)assigned partition restarts from its newest snapshot at the snapshot's offset.
* Bad input (undecodable, invalid, oversized, too late) never stops the worker: the original bytes
  go to ``<events>.dlq`` with the reason in headers. Dead letters are at-least-once (a crash before a
  checkpoint re-sends the ones after it).
* Kafka's committed offsets trail the snapshots; they feed lag monitoring, never recovery.
* A serving worker's blend weights (``before_click``) are in the same snapshot, so after a crash each
  re-applied click teaches them once more from the snapshot's weights: once per click in the history
  that survives. The step itself may differ on the retry: it depends on the model served and on the
  item-side candidate lists, which are rebuilt on a timer.
* Snapshot offsets are positions in one incarnation of the topic (Kafka's topic id, kept beside the
  snapshots). A topic created anew under the same name (an in-memory broker restarted, a topic
  deleted and created again) restarts at offset 0: the worker keeps the state, moves the old
  snapshots and training-log segments aside and applies the new log from its beginning, instead of
  skipping its events up to the old offsets.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from stream.checkpoint import Checkpointer
from stream.config import Config
from stream.events import EVENT_TYPES, Event, EventCodec, InvalidEvent
from stream.gc_tuning import young_generation_for
from stream.kafka.clients import make_admin, make_consumer, make_producer
from stream.metrics import WorkerMetrics
from stream.outbox import Outbox
from stream.owned_partition import OwnedPartition
from stream.processor import Outcome, PartitionProcessor
from stream.rebalance import Rebalance
from stream.snapshot import SnapshotStore
from stream.training_log import TrainingLog, log_root
from stream.worker_report import WorkerReport

log = logging.getLogger(__name__)


class BatchListener(Protocol):
    """Told about every applied event after each batch, on the worker's thread (e.g. the publisher
    of recommendations). Its failures are its own: it must not raise into the worker."""

    def batch_applied(self, applied: list[tuple[OwnedPartition, Event]]) -> None: ...


ClickHook = Callable[[PartitionProcessor, Event, threading.Lock], None]


class StreamWorker:
    """The poll -> process -> checkpoint loop; rebalancing (``stream.rebalance``), checkpoints
    (``stream.checkpoint``), dead letters (``stream.outbox``) and gauges (``stream.worker_report``)
    each live in their own module and share ``owned``.

    ``before_click`` is called before each click the processor will apply (not a duplicate, not
    late), on this thread -- the state's only writer -- with the partition's lock for it to take
    while it reads state (a model call need not block requests): the serving blend's
    test-then-learn. It must not raise.
    """

    def __init__(
        self,
        cfg: Config,
        metrics: WorkerMetrics,
        consumer: Consumer | None = None,
        producer: Producer | None = None,
        listener: BatchListener | None = None,
        before_click: ClickHook | None = None,
    ) -> None:
        self.cfg = cfg
        self.listener = listener
        self.before_click = before_click
        self.topic = cfg.kafka.events_topic
        self.metrics = metrics
        self.codec = EventCodec(cfg.events.max_bytes)
        self.owned: dict[int, OwnedPartition] = {}
        self._partition_count: int | None = None
        data = Path(cfg.worker.data_dir)
        self.training_log = TrainingLog(log_root(data), self.topic, cfg.worker.training_log_retention_s)
        self.report = WorkerReport(self.topic, metrics)
        stats: dict[str, Any] = {"statistics.interval.ms": 1000, "stats_cb": self.report.on_stats}
        self.consumer = consumer or make_consumer(cfg.kafka, **stats)
        self.producer = producer or make_producer(cfg.kafka)
        self.outbox = Outbox(cfg, self.producer, metrics)
        self.checkpointer = Checkpointer(
            self.topic,
            cfg.worker,
            self.owned,
            self.consumer,
            self.outbox,
            SnapshotStore(data / "snapshots"),
            self.training_log,
            metrics,
            self._release,
        )
        # Asks for the topic's id on assignment (only when the worker makes its own clients).
        admin = None if consumer is not None else make_admin(cfg.kafka)
        self.rebalance = Rebalance(
            cfg, self.owned, self.checkpointer, self.outbox, self.training_log, metrics, admin, self._release
        )

    def partition_count(self) -> int:
        """Partitions of the events topic (asked once; librdkafka handles are thread-safe): the
        modulus that routes a user to the worker owning their state."""
        if self._partition_count is None:
            self._partition_count = len(self.consumer.list_topics(self.topic, timeout=10).topics[self.topic].partitions)
        return self._partition_count

    def _release(self, partition: int) -> None:
        self.owned.pop(partition, None)
        self.training_log.forget(partition)
        self.report.forget(partition)
        self.metrics.assigned.set(len(self.owned))

    def run(self, stop: threading.Event | None = None, idle_exit_s: float | None = None) -> None:
        """Consume until ``stop`` is set, then checkpoint and leave the group.

        With ``idle_exit_s``, also leave once nothing arrived for that long and the whole group is
        done: every partition's committed offset has reached its high watermark (so a batch
        job does not exit while a dead member's partitions still wait to be taken over).
        The garbage collector's young generation holds a whole batch meanwhile (``stream.gc_tuning``).
        """
        with young_generation_for(self.cfg.worker.batch_size):
            self._run(stop or threading.Event(), idle_exit_s)

    def _run(self, stop: threading.Event, idle_exit_s: float | None) -> None:
        r = self.rebalance
        self.consumer.subscribe([self.topic], on_assign=r.on_assign, on_revoke=r.on_revoke, on_lost=r.on_lost)
        last_message = time.monotonic()
        try:
            while not stop.is_set():
                messages = self.consumer.consume(self.cfg.worker.batch_size, self.cfg.worker.poll_timeout_s)
                if messages:
                    last_message = time.monotonic()
                    with self.metrics.batch_seconds.time():
                        self.process_batch(messages)
                elif idle_exit_s is not None and time.monotonic() - last_message > idle_exit_s:
                    if self._idle_and_done():
                        break
                    last_message = time.monotonic()
                self.producer.poll(0)
                self.checkpointer.due()
                self.report.report(self.owned)
            self.checkpointer.every()
        except BaseException:
            # The state in memory may hold a half-applied event: leave without checkpointing, so
            # the partitions' next owner (or this worker, restarted) replays from the last snapshot.
            self.checkpointer.failed = True
            self.consumer.close()
            raise
        self.consumer.close()  # leaves the group; revocation finds nothing new to checkpoint
        self.producer.flush(10)

    def _idle_and_done(self) -> bool:
        """Checkpoint and commit everything, then whether the whole group has caught up."""
        self.checkpointer.every()
        self.checkpointer.commit_snapshot_offsets()
        try:
            meta = self.consumer.list_topics(self.topic, timeout=5)
            partitions = [TopicPartition(self.topic, p) for p in meta.topics[self.topic].partitions]
            for tp in self.consumer.committed(partitions, timeout=5):
                low, high = self.consumer.get_watermark_offsets(tp, timeout=5)
                if high > low and tp.offset < high:
                    return False
            return True
        except Exception as exc:  # the broker may be briefly away: not caught up, try later
            log.info("could not check group progress: %s", exc)
            return False

    def process_batch(self, messages: list[Message]) -> None:
        self.metrics.consumed.inc(len(messages))
        applied = dict.fromkeys(EVENT_TYPES, 0)  # counted per batch: a labelled inc() per event costs ~3 us
        duplicates = 0
        applied_events: list[tuple[OwnedPartition, Event]] = []
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("consume error: %s", err)
                continue
            partition, offset = msg.partition(), msg.offset()
            if partition is None or offset is None:
                continue  # only error messages lack a position
            owned = self.owned.get(partition)
            if owned is None or offset < owned.next_offset:
                continue  # not ours any more, or already reflected in the restored snapshot
            outcome = self._apply(owned, msg, partition, offset)
            if outcome is not None:
                event, result = outcome
                if result is Outcome.APPLIED:
                    applied[event.type] += 1
                    if self.listener is not None:
                        applied_events.append((owned, event))
                elif result is Outcome.DUPLICATE:
                    duplicates += 1
            owned.next_offset = offset + 1
        for event_type, count in applied.items():
            if count:
                self.metrics.processed.labels(event_type).inc(count)
        if duplicates:
            self.metrics.duplicates.inc(duplicates)
        if applied_events and self.listener is not None:
            self.listener.batch_applied(applied_events)

    def _apply(self, owned: OwnedPartition, msg: Message, partition: int, offset: int) -> tuple[Event, Outcome] | None:
        """Decode and apply one message, logging it for training when applied; bad or late input is
        dead-lettered (None when it did not decode)."""
        value = msg.value()
        try:
            event = self.codec.decode(value)
        except InvalidEvent as exc:
            self.outbox.dead_letter(msg, exc.reason, exc.detail)
            return None
        assert value is not None  # decode refuses a tombstone
        if self.before_click is not None and event.type == "click" and owned.processor.accepts(event):
            self.before_click(owned.processor, event, owned.lock)
        with owned.lock:
            outcome = owned.processor.process(event)
        if outcome is Outcome.APPLIED:
            self.training_log.append(partition, offset, event, value)
        elif outcome is Outcome.LATE:
            self.outbox.dead_letter(msg, "late", f"ts {event.ts} is older than the allowed lateness")
        return event, outcome
