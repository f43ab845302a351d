"""The worker's data directory fills up (a real, tiny tmpfs), then space returns.

Guarantee under test (stream/checkpoint.py, Checkpointer.checkpoint): a checkpoint that cannot be written is
counted (streamrec_snapshot_failures_total) and logged, and no offset past the last snapshot that
was written is committed; when space returns the next checkpoint succeeds and every event is
reflected exactly once -- the final state equals a crash-free run's.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from stream.kafka.clients import make_producer
from stream.produce import produce_events
from stream.snapshot import SnapshotStore
from stream.sources.synthetic import SyntheticConfig, synthetic_events
from tests.kafka_fixtures import final_states


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs: a disk that really fills up (needs mount privileges, which CI's root has)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({done.stderr.strip()}); "
            "tests/stream/test_worker_contract.py covers the same contract with an injected ENOSPC"
        )
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(disk: Path) -> Path:
    ballast = disk / "ballast"
    with ballast.open("wb") as f:
        try:
            while True:
                f.write(b"\0" * (1 << 20))
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return ballast


def _committed(cfg, group: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": cfg.kafka.bootstrap_servers, "group.id": group})
    try:
        parts = [TopicPartition(cfg.kafka.events_topic, p) for p in range(cfg.kafka.partitions)]
        return {tp.partition: tp.offset for tp in consumer.committed(parts, timeout=30)}
    finally:
        consumer.close()


def _snapshot_offsets(cfg, data_dir: Path) -> dict[int, int]:
    store = SnapshotStore(data_dir / "snapshots")
    return {
        p: (snap.offset if (snap := store.latest(cfg.kafka.events_topic, p)) else 0)
        for p in range(cfg.kafka.partitions)
    }


def test_a_full_disk_commits_nothing_unsnapshotted_and_recovers(kafka_cfg, workers, tmp_path, small_disk, fault_row):
    cfg = kafka_cfg
    events = list(synthetic_events(SyntheticConfig(n_users=300, n_items=200, n_sessions=3000, seed=8)))
    half = len(events) // 2
    produce_events(make_producer(cfg.kafka), cfg.kafka.events_topic, events[:half])

    worker = workers(cfg, data_dir=small_disk)
    worker.wait_for(
        lambda: sum(_snapshot_offsets(cfg, small_disk).values()) >= half,
        timeout_s=180,
        what="the first half checkpointed",
    )
    ballast = _fill(small_disk)
    produce_events(make_producer(cfg.kafka), cfg.kafka.events_topic, events[half:])
    worker.wait_for(
        lambda: (worker.metric("streamrec_snapshot_failures_total") or 0) >= 3,
        timeout_s=120,
        what="checkpoints failing on the full disk",
    )
    worker.wait_for(
        lambda: (worker.metric("streamrec_events_consumed_total") or 0) >= len(events),
        timeout_s=180,
        what="the second half consumed",
    )
    # While the disk is full: the worker is alive, and Kafka holds no offset past a written snapshot.
    assert worker.proc.poll() is None
    snapshots, committed = _snapshot_offsets(cfg, small_disk), _committed(cfg, cfg.kafka.group_id)
    assert all(committed[p] <= snapshots[p] for p in snapshots), (committed, snapshots)
    assert sum(snapshots.values()) < len(events), "the second half must not be in any snapshot yet"
    assert "checkpoint of" in worker.stderr_tail() and "No space left on device" in worker.stderr_tail()

    os.unlink(ballast)  # space returns
    worker.wait_for(
        lambda: sum(_snapshot_offsets(cfg, small_disk).values()) >= len(events),
        timeout_s=180,
        what="checkpoints to succeed again",
    )
    worker.stop(signal.SIGTERM)

    clean_dir = tmp_path / "clean"
    clean = workers(cfg, data_dir=clean_dir, group=f"clean-{uuid.uuid4().hex[:6]}", idle_exit=3)
    assert clean.wait_exit() == 0, clean.stderr_tail()
    reference, recovered = final_states(cfg, clean_dir), final_states(cfg, small_disk)
    applied = sum(p.counts["applied"] for p in recovered.values())
    row = fault_row(
        "snapshot disk full, then space returns",
        "no offset committed past a written snapshot; state equals a crash-free run",
        len(events),
        applied,
        max(applied - len(events), 0),
        max(len(events) - applied, 0),
    )
    assert row.held, row
    for partition in reference:
        assert recovered[partition].fingerprint() == reference[partition].fingerprint(), partition
