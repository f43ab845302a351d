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

import contextlib
import logging
import operator
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import msgspec
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from stream.config import Config
from stream.evaluation.replay import summarise
from stream.events import EVENT_TYPES, Event, EventCodec, InvalidEvent
from stream.kafka.clients import make_consumer, make_producer, produce_waiting
from stream.metrics import WorkerMetrics
from stream.processor import Outcome, PartitionProcessor
from stream.snapshot import SnapshotStore
from stream.training_log import TrainingLog, log_root

log = logging.getLogger(__name__)

DLQ_DETAIL_MAX = 512
# msg.headers() through the C API: confluent-kafka returns a header key that is not UTF-8 with a
# UnicodeDecodeError left pending, and CPython's specialised call of a C method (a hot loop's) does
# not check for that, so the error would surface at some later, unrelated line. This call is checked:
# it raises SystemError right here.
_read_headers = operator.methodcaller("headers")


class DeliveryFailed(Exception):
    """A dead letter or signal was refused by Kafka: stop, so a restart replays and re-sends it."""


@dataclass
class OwnedPartition:
    processor: PartitionProcessor
    next_offset: int  # the offset of the next event to apply
    snapshot_offset: int
    snapshot_time: float = field(default_factory=time.time)
    # Held while an event is applied; readers on other threads (the HTTP scorer) hold it while
    # they read the state, so they never see an event half-applied.
    lock: threading.Lock = field(default_factory=threading.Lock)


class BatchListener(Protocol):
    """Told about every applied event after each batch, on the worker's thread (e.g. the publisher
    of recommendations). Its failures are its own: it must not raise into the worker."""

    def batch_applied(self, applied: list[tuple[OwnedPartition, Event]]) -> None: ...


ClickHook = Callable[[PartitionProcessor, Event, threading.Lock], None]


class StreamWorker:
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
        # Called before each click the processor will apply (not a duplicate, not late), on this
        # thread -- the state's only writer -- with the partition's lock for it to take while it reads
        # state (a model call need not block requests): the serving blend's test-then-learn. It must
        # not raise.
        self.before_click = before_click
        self._partition_count: int | None = None
        self.topic = cfg.kafka.events_topic
        self.metrics = metrics
        self.codec = EventCodec(cfg.events.max_bytes)
        data = Path(cfg.worker.data_dir)
        self.snapshots = SnapshotStore(data / "snapshots")
        self.training_log = TrainingLog(log_root(data), self.topic, cfg.worker.training_log_retention_s)
        # Lag comes from librdkafka's statistics (high watermarks it learns from fetches): no
        # extra broker round-trips on the hot path.
        self._high_watermarks: dict[int, int] = {}
        self.consumer = consumer or make_consumer(
            cfg.kafka, **{"statistics.interval.ms": 1000, "stats_cb": self._on_stats}
        )
        self.producer = producer or make_producer(cfg.kafka)
        # Asks for the topic's id on assignment (only when the worker makes its own clients).
        self._admin = (
            None
            if consumer is not None
            else AdminClient({"bootstrap.servers": cfg.kafka.bootstrap_servers, **cfg.kafka.client_overrides})
        )
        self.owned: dict[int, OwnedPartition] = {}
        self._last_report = 0.0
        self._delivery_errors: list[str] = []
        self._failed = False  # set when run() dies: no checkpoint may follow

    def partition_count(self) -> int:
        """Partitions of the events topic (asked once; librdkafka handles are thread-safe): the
        modulus that routes a user to the worker owning their state."""
        if self._partition_count is None:
            self._partition_count = len(self.consumer.list_topics(self.topic, timeout=10).topics[self.topic].partitions)
        return self._partition_count

    # -- rebalance callbacks (run inside consume()) ---------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        topic_id = self._topic_id()
        for tp in partitions:
            proc, offset = self._restore(tp.partition)
            offset = self._same_log(tp.partition, proc, offset, topic_id)
            # Events at or after ``offset`` will be applied (and logged) again. Without a snapshot,
            # replay starts at the low watermark: segments of events Kafka no longer holds stay.
            keep_below = offset if offset > 0 else self._low_watermark(tp.partition)
            self.training_log.discard_from(tp.partition, keep_below)
            self.owned[tp.partition] = OwnedPartition(proc, offset, offset)
            tp.offset = offset if offset > 0 else OFFSET_BEGINNING
        consumer.incremental_assign(partitions)
        self.metrics.assigned.set(len(self.owned))

    def _restore(self, partition: int) -> tuple[PartitionProcessor, int]:
        """The newest snapshot that verifies and loads, else a fresh processor at offset 0."""
        hook = self._drift_hook(partition)
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
        if self._admin is None:
            return None
        try:
            described = self._admin.describe_topics(TopicCollection([self.topic]), request_timeout=5)
            uuid = described[self.topic].result().topic_id
        except Exception as exc:  # unknown: trust the snapshots, as before topic ids were kept
            log.warning("no topic id for %s (%s); not checking that the snapshots belong to its log", self.topic, exc)
            return None
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
            aside = folder / f"replaced-{recorded}"
            aside.mkdir(exist_ok=True)
            for snap in folder.glob("*.snap"):
                os.replace(snap, aside / snap.name)
            segments = self.training_log._dir(partition)
            if segments.exists():
                os.replace(segments, segments.parent / f"replaced-{recorded}-{segments.name}")
            self.snapshots.write(self.topic, partition, 0, proc.to_state())
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

    def _low_watermark(self, partition: int) -> int:
        try:
            low, _ = self.consumer.get_watermark_offsets(TopicPartition(self.topic, partition), timeout=5)
            return max(low, 0)
        except Exception as exc:  # unknown: keep everything rather than delete history
            log.warning("no low watermark for %s[%d] (%s); keeping its training log", self.topic, partition, exc)
            return 2**63 - 1

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            if tp.partition in self.owned:
                self._checkpoint(tp.partition, still_owned=True)  # the callback proves ownership
                self._release(tp.partition)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Someone else may own these already: writing a snapshot now could overwrite theirs.
        for tp in partitions:
            self._release(tp.partition)

    def _release(self, partition: int) -> None:
        self.owned.pop(partition, None)
        self.training_log.forget(partition)
        self._high_watermarks.pop(partition, None)
        with contextlib.suppress(KeyError):  # never reported
            self.metrics.lag.remove(str(partition))
        self.metrics.assigned.set(len(self.owned))

    def _on_stats(self, stats_json: str) -> None:
        topic = msgspec.json.decode(stats_json).get("topics", {}).get(self.topic, {})
        for key, part in topic.get("partitions", {}).items():
            if int(key) >= 0 and part.get("hi_offset", -1) >= 0:
                self._high_watermarks[int(key)] = part["hi_offset"]

    def _drift_hook(self, partition: int):
        def hook(learner: str, position: int, event: Event) -> None:
            self.metrics.drift.labels(learner).inc()
            log.warning("drift detected on %s in partition %d at event %s", learner, partition, event.event_id)
            signal = {
                "kind": "drift",
                "learner": learner,
                "partition": partition,
                "position": position,
                "event_id": event.event_id,
                "ts": event.ts,
            }
            self._produce(self.cfg.kafka.signals_topic, msgspec.json.encode(signal))

        return hook

    def _produce(self, topic: str, value: bytes | None, **kwargs) -> None:
        """Produce with a delivery check; a full local queue waits instead of raising."""
        produce_waiting(self.producer, topic, value, on_delivery=self._on_delivery, **kwargs)

    def _on_delivery(self, err, msg) -> None:
        if err is not None:
            self._delivery_errors.append(f"{msg.topic()}: {err}")

    # -- the loop -------------------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None, idle_exit_s: float | None = None) -> None:
        """Consume until ``stop`` is set, then checkpoint and leave the group.

        With ``idle_exit_s``, also leave once nothing arrived for that long and the whole group is
        done: every partition's committed offset has reached its high watermark (so a batch
        job does not exit while a dead member's partitions still wait to be taken over).
        """
        stop = stop or threading.Event()
        self.consumer.subscribe(
            [self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        last_message = time.monotonic()
        try:
            while not stop.is_set():
                messages = self.consumer.consume(self.cfg.worker.batch_size, self.cfg.worker.poll_timeout_s)
                if messages:
                    last_message = time.monotonic()
                    with self.metrics.batch_seconds.time():
                        self.process_batch(messages)
                elif idle_exit_s is not None and time.monotonic() - last_message > idle_exit_s:
                    self._checkpoint_all()
                    self._commit_snapshot_offsets()
                    if self._group_caught_up():
                        break
                    last_message = time.monotonic()
                self.producer.poll(0)
                self._checkpoint_due()
                self._report()
            self._checkpoint_all()
        except BaseException:
            # The state in memory may hold a half-applied event: leave without checkpointing, so
            # the partitions' next owner (or this worker, restarted) replays from the last snapshot.
            self._failed = True
            self.consumer.close()
            raise
        self.consumer.close()  # leaves the group; revocation finds nothing new to checkpoint
        self.producer.flush(10)

    def _commit_snapshot_offsets(self) -> None:
        """Commit every owned partition's snapshot offset now (a restored one may never have been)."""
        offsets = [
            TopicPartition(self.topic, p, o.snapshot_offset) for p, o in self.owned.items() if o.snapshot_offset > 0
        ]
        if offsets:
            try:
                self.consumer.commit(offsets=offsets, asynchronous=False)
            except Exception as exc:  # lag reporting only: never fatal
                log.info("offset commit failed: %s", exc)

    def _group_caught_up(self) -> bool:
        try:
            meta = self.consumer.list_topics(self.topic, timeout=5)
            partitions = [TopicPartition(self.topic, p) for p in meta.topics[self.topic].partitions]
            committed = self.consumer.committed(partitions, timeout=5)
            for tp in committed:
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
            owned = self.owned.get(partition)
            if owned is None or offset < owned.next_offset:
                continue  # not ours any more, or already reflected in the restored snapshot
            value = msg.value()
            try:
                event = self.codec.decode(value)
            except InvalidEvent as exc:
                self._dead_letter(msg, exc.reason, exc.detail)
            else:
                if self.before_click is not None and event.type == "click" and owned.processor.accepts(event):
                    self.before_click(owned.processor, event, owned.lock)
                with owned.lock:
                    outcome = owned.processor.process(event)
                if outcome is Outcome.APPLIED:
                    applied[event.type] += 1
                    self.training_log.append(partition, offset, event, value)
                    if self.listener is not None:
                        applied_events.append((owned, event))
                elif outcome is Outcome.DUPLICATE:
                    duplicates += 1
                else:
                    self._dead_letter(msg, "late", f"ts {event.ts} is older than the allowed lateness")
            owned.next_offset = offset + 1
        for event_type, count in applied.items():
            if count:
                self.metrics.processed.labels(event_type).inc(count)
        if duplicates:
            self.metrics.duplicates.inc(duplicates)
        if applied_events:
            self.listener.batch_applied(applied_events)

    def _dead_letter(self, msg: Message, reason: str, detail: str) -> None:
        ours = [
            ("streamrec.dlq.reason", reason.encode()),
            ("streamrec.dlq.detail", detail[:DLQ_DETAIL_MAX].encode()),
            ("streamrec.source.topic", msg.topic().encode()),
            ("streamrec.source.partition", str(msg.partition()).encode()),
            ("streamrec.source.offset", str(msg.offset()).encode()),
        ]
        try:
            original = list(_read_headers(msg) or [])
        except (SystemError, UnicodeDecodeError):
            # A header key that is not UTF-8 (other clients can send one): leave the headers out
            # rather than stop on this message after every restart.
            original, ours = [], [*ours, ("streamrec.dlq.truncated", b"headers=unreadable")]
        try:
            self._produce(self.cfg.kafka.dlq_topic, msg.value(), key=msg.key(), headers=original + ours)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.MSG_SIZE_TOO_LARGE:
                raise
            # A message just under the producer's message.max.bytes, which our headers tip over:
            # raising here would stop the worker on it after every restart. Dead-letter its head
            # (the source offset locates the whole) with the original sizes.
            value, key, cut = msg.value(), msg.key(), self.cfg.events.max_bytes
            sizes = f"value={len(value or b'')} key={len(key or b'')} headers={len(original)}"
            self._produce(
                self.cfg.kafka.dlq_topic,
                None if value is None else value[:cut],
                key=None if key is None else key[:cut],
                headers=[*ours, ("streamrec.dlq.truncated", sizes.encode())],
            )
        self.metrics.dead_lettered.labels(reason).inc()

    # -- checkpoints ----------------------------------------------------------------------------

    def _checkpoint_due(self) -> None:
        now = time.time()
        w = self.cfg.worker
        for partition, owned in list(self.owned.items()):
            pending = owned.next_offset - owned.snapshot_offset
            if pending >= w.snapshot_every_events or (pending and now - owned.snapshot_time >= w.snapshot_every_s):
                self._checkpoint(partition)

    def _checkpoint_all(self) -> None:
        for partition in list(self.owned):
            self._checkpoint(partition)

    def _checkpoint(self, partition: int, still_owned: bool = False) -> None:
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
        if self._failed or owned is None or owned.next_offset == owned.snapshot_offset:
            return
        if not still_owned and partition not in {tp.partition for tp in self.consumer.assignment()}:
            # Lost without a callback yet (e.g. a session timeout): another worker may own it
            # and its snapshots now, so this one must not write.
            log.warning("%s[%d] is no longer assigned here; dropping it without a checkpoint", self.topic, partition)
            self._release(partition)
            return
        started = time.perf_counter()
        try:
            if self.producer.flush(10) > 0:
                raise RuntimeError("producer could not deliver dead letters within 10 s")
            if self._delivery_errors:
                raise DeliveryFailed("; ".join(self._delivery_errors[:5]))
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

    # -- metrics --------------------------------------------------------------------------------

    def _report(self) -> None:
        now = time.monotonic()
        if now - self._last_report < 1.0:
            return
        self._last_report = now
        for partition, owned in self.owned.items():
            high = self._high_watermarks.get(partition)
            if high is not None:
                self.metrics.lag.labels(str(partition)).set(max(0, high - owned.next_offset))
        processors = [o.processor for o in self.owned.values()]
        if processors:
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
        self.metrics.snapshot_times([o.snapshot_time for o in self.owned.values()])
