"""The worker against a real broker: bad input, crashes and group membership.

Contract under test (stream/worker.py): every valid event is applied exactly once to its
partition's state; every bad message lands in <topic>.dlq with its reason; state survives SIGKILL
and partition moves.
"""

from __future__ import annotations

import random
import signal
import threading
import time

import msgspec
import pytest
from prometheus_client import CollectorRegistry

from stream.events import EventCodec
from stream.kafka.clients import make_producer
from stream.metrics import WorkerMetrics
from stream.produce import produce_events
from stream.sources.synthetic import SyntheticConfig, synthetic_events
from stream.worker import StreamWorker
from tests.kafka_fixtures import encode, final_states, produce_raw, read_topic

pytestmark = pytest.mark.integration


def run_worker_until_idle(cfg, idle_s: float = 2.0) -> StreamWorker:
    worker = StreamWorker(cfg, WorkerMetrics(CollectorRegistry()))
    thread = threading.Thread(target=worker.run, kwargs={"idle_exit_s": idle_s})
    thread.start()
    thread.join(300)  # a deadline for a slow machine: it returns once the worker is idle
    assert not thread.is_alive(), "worker did not go idle"
    return worker


def test_bad_input_is_dead_lettered_and_valid_input_applied_once(kafka_cfg):
    cfg = kafka_cfg
    valid = list(synthetic_events(SyntheticConfig(n_users=50, n_items=40, n_sessions=200, seed=11)))
    good = [(e.user_id.encode(), EventCodec.encode(e)) for e in valid]
    template = msgspec.to_builtins(valid[0])
    bad = [
        (b"k", b"{not json", "malformed_json"),
        (b"k", b"\xff\xfe\xfa binary", "malformed_json"),
        (b"k", None, "malformed_json"),
        (b"k", encode({**template, "type": "purchase"}), "schema"),
        (b"k", encode({**template, "ts": "yesterday"}), "schema"),
        (b"k", encode({**template, "event_id": "x", "extra": {"deep": [[[[1]]]]}}), "schema"),
        (b"k", encode({**template, "v": 7}), "unsupported_version"),
        # Every field within its own limit, the whole over the 8 KiB payload limit.
        (b"k", encode({**template, "event_id": "big", "user": {f"k{i}": "v" * 250 for i in range(32)}}), "oversized"),
        (
            valid[-1].user_id.encode(),
            encode(
                {**template, "event_id": "late-1", "user_id": valid[-1].user_id, "ts": valid[-1].ts - 10 * 86_400_000}
            ),
            "late",
        ),
    ]
    duplicates = [good[n] for n in range(0, len(good), 10)]
    stream = good[: len(good) // 2] + [(k, v) for k, v, _ in bad[:-1]] + good[len(good) // 2 :] + duplicates
    produce_raw(cfg, stream + [(k, v) for k, v, _ in bad[-1:]])

    worker = run_worker_until_idle(cfg)
    states = final_states(cfg)
    applied = sum(p.counts["applied"] for p in states.values())
    assert applied == len(valid), "every valid event applied exactly once"
    assert sum(p.counts["duplicate"] for p in states.values()) == len(duplicates)
    assert sum(p.counts["late"] for p in states.values()) == 1
    assert worker.metrics.registry.get_sample_value("streamrec_events_duplicate_total") == len(duplicates)

    dead = read_topic(cfg, cfg.kafka.dlq_topic, expected=len(bad))
    assert len(dead) == len(bad)
    by_value = {m.value(): dict(m.headers()) for m in dead}
    for _, value, reason in bad:
        headers = by_value[value]  # the original bytes, untouched
        assert headers["streamrec.dlq.reason"].decode() == reason
        assert headers["streamrec.dlq.detail"]
        assert headers["streamrec.source.topic"].decode() == cfg.kafka.events_topic
        assert int(headers["streamrec.source.offset"]) >= 0
        assert worker.metrics.registry.get_sample_value("streamrec_events_dead_lettered_total", {"reason": reason}) >= 1


def test_sigkill_mid_stream_then_restart_equals_a_crash_free_run(kafka_cfg, workers, tmp_path):
    cfg = kafka_cfg
    total = produce_events(
        make_producer(cfg.kafka),
        cfg.kafka.events_topic,
        synthetic_events(SyntheticConfig(n_users=400, n_items=300, n_sessions=4000, seed=2)),
    )
    slow = ["--set", "worker.prequential_every=1"]  # a slower worker gives the kill a wide window

    clean = workers(cfg, data_dir=tmp_path / "clean", group="clean", idle_exit=3, extra=slow)
    assert clean.wait_exit() == 0, clean.stderr_tail()

    crash_dir = tmp_path / "crash"
    victim = workers(cfg, data_dir=crash_dir, group="crash", extra=slow)

    def progress() -> int:
        snaps = crash_dir / "snapshots" / cfg.kafka.events_topic
        return sum(max((int(f.stem) for f in d.glob("*.snap")), default=0) for d in snaps.glob("*"))

    victim.wait_for(lambda: progress() >= total * random.uniform(0.15, 0.4), what="some checkpoints")
    time.sleep(random.uniform(0.0, 0.5))
    victim.stop(signal.SIGKILL)
    killed_at = progress()
    assert 0 < killed_at < total, "the kill must land mid-stream"

    survivor = workers(cfg, data_dir=crash_dir, group="crash", idle_exit=3, extra=slow)
    assert survivor.wait_exit() == 0, survivor.stderr_tail()

    reference = final_states(cfg, tmp_path / "clean")
    recovered = final_states(cfg, crash_dir)
    assert sum(p.counts["applied"] for p in reference.values()) == total
    assert set(recovered) == set(reference)
    for partition in reference:
        assert recovered[partition].fingerprint() == reference[partition].fingerprint(), partition


def test_two_workers_split_partitions_and_take_over_on_exit(kafka_cfg, workers):
    cfg = kafka_cfg
    events = list(synthetic_events(SyntheticConfig(n_users=300, n_items=200, n_sessions=3000, seed=4)))
    half = len(events) // 2
    produce_events(make_producer(cfg.kafka), cfg.kafka.events_topic, events[:half])

    first = workers(cfg)
    first.wait_for(lambda: first.metric("streamrec_assigned_partitions") == 4, what="first owns all")
    second = workers(cfg)

    def both():
        return (
            first.metric("streamrec_assigned_partitions") or 0,
            second.metric("streamrec_assigned_partitions") or 0,
        )

    second.wait_for(lambda: both()[0] > 0 and both()[1] > 0 and sum(both()) == 4, what="a split")

    produce_events(make_producer(cfg.kafka), cfg.kafka.events_topic, events[half:])
    second.stop(signal.SIGTERM)  # a clean exit: it checkpoints and leaves the group
    first.wait_for(lambda: first.metric("streamrec_assigned_partitions") == 4, what="take-over")
    # Snapshots are written every second: wait until they reflect every event.
    first.wait_for(
        lambda: sum(p.counts["applied"] for p in final_states(cfg).values()) >= len(events),
        what="all events in snapshots",
        timeout_s=90,
    )
    first.stop(signal.SIGTERM)

    states = final_states(cfg)
    assert sum(p.counts["applied"] for p in states.values()) == len(events)
    assert sum(p.counts["duplicate"] for p in states.values()) == 0
