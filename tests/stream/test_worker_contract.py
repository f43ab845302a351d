"""The worker's failure contract, with the crash injected into its input (no broker needed):
what was and was not checkpointed or committed."""

from __future__ import annotations

import gc
import threading

import pytest
from confluent_kafka import TopicPartition
from prometheus_client import CollectorRegistry

from stream.events import EventCodec
from stream.metrics import WorkerMetrics
from stream.processor import PartitionProcessor
from stream.snapshot import SnapshotStore
from stream.worker import StreamWorker
from tests.conftest import with_section


class FakeMessage:
    def __init__(self, topic, partition, offset, value):
        self._t, self._p, self._o, self._v = topic, partition, offset, value

    def error(self):
        return None

    def topic(self):
        return self._t

    def partition(self):
        return self._p

    def offset(self):
        return self._o

    def value(self):
        return self._v

    def key(self):
        return b"k"

    def headers(self):
        return None


class FakeConsumer:
    """Assigns partition 0 on the first consume(), then hands out ``values`` in batches."""

    def __init__(self, topic, values, batch=10):
        self.topic, self.values, self.batch = topic, values, batch
        self.assigned, self.commits, self.position = [], [], 0
        self.callbacks = None

    def subscribe(self, topics, on_assign, on_revoke, on_lost):
        self.callbacks = (on_assign, on_revoke, on_lost)

    def incremental_assign(self, partitions):
        self.assigned = list(partitions)
        self.position = max(partitions[0].offset, 0)

    def assignment(self):
        return self.assigned

    def consume(self, n, timeout):
        if not self.assigned:
            self.callbacks[0](self, [TopicPartition(self.topic, 0)])
        out = [
            FakeMessage(self.topic, 0, o, self.values[o])
            for o in range(self.position, min(self.position + self.batch, len(self.values)))
        ]
        self.position += len(out)
        return out

    def commit(self, offsets, asynchronous=True):
        self.commits.append(offsets[0].offset)

    def close(self):
        if self.assigned:
            self.callbacks[1](self, self.assigned)
        self.assigned = []


class FakeProducer:
    def __init__(self):
        self.sent = []

    def produce(self, topic, value, on_delivery=None, **kwargs):
        self.sent.append((topic, value, kwargs))

    def poll(self, timeout):
        return 0

    def flush(self, timeout):
        return 0


@pytest.fixture
def cfg(cfg, tmp_path):
    cfg = with_section(cfg, "worker", data_dir=str(tmp_path), snapshot_every_events=20, snapshot_every_s=3600.0)
    return cfg


def run_until_drained(worker, consumer, total):
    stop = threading.Event()
    original = worker.process_batch

    def batch(messages):
        original(messages)
        if consumer.position >= total:
            stop.set()

    worker.process_batch = batch
    worker.run(stop)


def payloads(stream, n):
    return [EventCodec.encode(e) for e in stream[:n]]


def test_a_clean_run_checkpoints_and_commits_everything(cfg, small_stream):
    values = payloads(small_stream, 100)
    consumer = FakeConsumer(cfg.kafka.events_topic, values)
    worker = StreamWorker(cfg, WorkerMetrics(CollectorRegistry()), consumer, FakeProducer())
    run_until_drained(worker, consumer, len(values))
    snap = SnapshotStore(f"{cfg.worker.data_dir}/snapshots").latest(cfg.kafka.events_topic, 0)
    assert snap.offset == 100 and consumer.commits[-1] == 100


def test_batches_are_applied_with_a_young_generation_that_holds_them(cfg, small_stream):
    """stream.gc_tuning: a batch's messages die young instead of being promoted (which set off full
    collections of the whole state); the process has its own setting back after the run."""
    before = gc.get_threshold()
    values = payloads(small_stream, 100)
    consumer = FakeConsumer(cfg.kafka.events_topic, values)
    worker = StreamWorker(cfg, WorkerMetrics(CollectorRegistry()), consumer, FakeProducer())
    during = []
    original = worker.process_batch

    def batch(messages):
        during.append(gc.get_threshold()[0])
        original(messages)

    worker.process_batch = batch
    run_until_drained(worker, consumer, len(values))
    assert during and min(during) >= 2 * cfg.worker.batch_size
    assert gc.get_threshold() == before


def test_the_click_hook_sees_each_applied_click_once_before_it_is_applied(cfg, small_stream):
    """The serving blend's test-then-learn: handed the partition's lock to take while it reads state
    (not held for it, so its model call does not block requests), on state without the click, and
    never for a duplicate (a redelivered click must not teach twice)."""
    values = payloads(small_stream, 200)
    values += values[:50]  # redelivered
    seen = []

    def hook(processor, event, lock):
        owned = worker.owned[0]
        assert owned.processor is processor and lock is owned.lock and not lock.locked()
        assert processor.accepts(event)  # not applied yet
        seen.append(event.event_id)

    consumer = FakeConsumer(cfg.kafka.events_topic, values)
    worker = StreamWorker(cfg, WorkerMetrics(CollectorRegistry()), consumer, FakeProducer(), before_click=hook)
    run_until_drained(worker, consumer, len(values))
    clicks = [e.event_id for e in small_stream[:200] if e.type == "click"]
    assert clicks and seen == clicks


def test_a_crash_inside_an_event_leaves_the_last_checkpoint_untouched(cfg, small_stream, monkeypatch):
    values = payloads(small_stream, 100)
    consumer = FakeConsumer(cfg.kafka.events_topic, values)
    worker = StreamWorker(cfg, WorkerMetrics(CollectorRegistry()), consumer, FakeProducer())
    original = PartitionProcessor.process

    def explode_at_55(self, event):
        if event.event_id == small_stream[55].event_id:
            original(self, event)  # half-applied on purpose, then fail
            raise RuntimeError("injected")
        return original(self, event)

    monkeypatch.setattr(PartitionProcessor, "process", explode_at_55)
    with pytest.raises(RuntimeError, match="injected"):
        run_until_drained(worker, consumer, len(values))
    snap = SnapshotStore(f"{cfg.worker.data_dir}/snapshots").latest(cfg.kafka.events_topic, 0)
    assert snap.offset <= 50, "no checkpoint may follow a failed event"
    assert max(consumer.commits) == snap.offset
    # Restarting from it replays event 55 and ends equal to a run that never failed.
    monkeypatch.setattr(PartitionProcessor, "process", original)
    restarted = FakeConsumer(cfg.kafka.events_topic, values)
    run_until_drained(
        StreamWorker(cfg, WorkerMetrics(CollectorRegistry()), restarted, FakeProducer()), restarted, len(values)
    )
    clean = PartitionProcessor(cfg)
    for event in small_stream[:100]:
        clean.process(event)
    final = SnapshotStore(f"{cfg.worker.data_dir}/snapshots").latest(cfg.kafka.events_topic, 0)
    assert PartitionProcessor.from_state(cfg, final.state).fingerprint() == clean.fingerprint()


def test_a_full_disk_commits_nothing_past_the_last_snapshot_and_recovers(cfg, small_stream, monkeypatch):
    values = payloads(small_stream, 100)
    consumer = FakeConsumer(cfg.kafka.events_topic, values)
    registry = CollectorRegistry()
    worker = StreamWorker(cfg, WorkerMetrics(registry), consumer, FakeProducer())
    real_write = SnapshotStore.write
    disk = {"full": False}

    def write(self, topic, partition, offset, state):
        if disk["full"]:
            raise OSError(28, "No space left on device")
        return real_write(self, topic, partition, offset, state)

    monkeypatch.setattr(SnapshotStore, "write", write)
    original = worker.process_batch
    stop = threading.Event()

    def batch(messages):
        original(messages)
        disk["full"] = 30 <= consumer.position < 70  # full from event 30 to 70
        if consumer.position >= len(values):
            stop.set()

    worker.process_batch = batch
    worker.run(stop)
    assert registry.get_sample_value("streamrec_snapshot_failures_total") >= 1
    assert not [c for c in consumer.commits if 30 < c < 70], "nothing committed while the disk was full"
    assert consumer.commits[-1] == 100


def test_an_unloadable_newest_snapshot_falls_back_to_the_previous(cfg, small_stream):
    store = SnapshotStore(f"{cfg.worker.data_dir}/snapshots")
    good = PartitionProcessor(cfg)
    for event in small_stream[:10]:
        good.process(event)
    store.write(cfg.kafka.events_topic, 0, 10, good.to_state())
    store.write(cfg.kafka.events_topic, 0, 20, {**good.to_state(), "format": 99})
    worker = StreamWorker(cfg, WorkerMetrics(CollectorRegistry()), FakeConsumer("x", []), FakeProducer())
    proc, offset = worker.rebalance.restore(0)
    assert offset == 10 and proc.fingerprint() == good.fingerprint()
