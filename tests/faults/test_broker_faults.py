"""The broker away: down when a worker starts, and stopped and started again while events flow.

Guarantees under test:
* A worker started before its broker waits (metrics up, a log line per retry) and applies every
  event once the broker is there: no exit, no crash loop.
* A broker restart with durable storage loses nothing it acknowledged: every acknowledged event is
  applied exactly once, including those produced while the broker was away (the producer retries
  them after the restart). Tansu's durable engine in the shipped binary is ``s3://``; the bucket here
  is an S3 server on loopback (moto), standing in for S3 or MinIO.
* A broker restart with in-memory storage keeps nothing the broker held: topics, records and
  committed offsets are gone, and acknowledged events that no worker had applied yet are lost with
  them. What the workers applied is in their snapshots and stays; the worker keeps running and, once
  the topics exist again, applies the new events (the new log restarts at offset 0, behind the
  snapshots' offsets).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import msgspec
import psutil
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from stream.config import Config, load_config
from stream.events import EventCodec
from stream.kafka.broker import EmbeddedBroker, free_port
from stream.kafka.clients import ensure_topics, make_producer, produce_waiting
from stream.sources.synthetic import SyntheticConfig, synthetic_events
from tests.kafka_fixtures import final_states, read_topic

SLOW_WORKER = ["--set", "worker.prequential_every=1"]  # full-catalogue tests per click: a wide window


def _cfg(bootstrap: str, data_dir: Path, partitions: int = 4) -> Config:
    name = f"b{uuid.uuid4().hex[:8]}"
    return load_config(
        env={},
        overrides=[
            f"kafka.bootstrap_servers='{bootstrap}'",
            f"kafka.events_topic='{name}'",
            f"kafka.group_id='{name}-g'",
            f"kafka.partitions={partitions}",
            f"worker.data_dir='{data_dir}'",
            "worker.snapshot_every_events=2000",
            "worker.snapshot_every_s=1.0",
            "metrics.port=0",
        ],
    )


def _events(n_sessions: int, seed: int) -> list:
    return list(synthetic_events(SyntheticConfig(n_users=300, n_items=200, n_sessions=n_sessions, seed=seed)))


class AckedProducer:
    """Produces events and counts the ones the broker acknowledged (delivery report without error)."""

    def __init__(self, cfg: Config, **extra) -> None:
        self.topic = cfg.kafka.events_topic
        self.producer: Producer = make_producer(cfg.kafka, **extra)
        self.acked: set[str] = set()
        self.failed: list[str] = []

    def send(self, events) -> None:
        for event in events:
            produce_waiting(
                self.producer,
                self.topic,
                EventCodec.encode(event),
                key=event.user_id.encode(),
                on_delivery=self._report(event.event_id),
            )
            self.producer.poll(0)

    def _report(self, event_id: str):
        def report(err, msg) -> None:
            (self.failed.append(f"{event_id}: {err}") if err is not None else self.acked.add(event_id))

        return report

    def flush(self, timeout_s: float = 60.0) -> int:
        return self.producer.flush(timeout_s)


def _applied(cfg: Config, data_dir: Path | None = None) -> int:
    return sum(p.counts["applied"] for p in final_states(cfg, data_dir).values())


def _tally(cfg: Config, acked: set[str], data_dir: Path | None = None) -> tuple[int, int, int]:
    """(reflected, duplicates, lost) of the snapshots against the acknowledged events."""
    states = final_states(cfg, data_dir)
    applied = sum(p.counts["applied"] for p in states.values())
    ids = set()
    for p in states.values():
        ids.update(p.dedup.to_state()["ids"])  # every applied id: the window (100k) outlasts these tests
    reflected = len(ids & acked)
    return reflected, max(applied - len(ids), 0), len(acked - ids)


def _log(worker) -> str:
    return Path(worker.log.name).read_text(errors="replace")


def _alive_and_serving(worker, seconds: float) -> None:
    """The worker stays up and its metrics endpoint answers for ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert worker.proc.poll() is None, f"worker exited ({worker.proc.returncode}): {worker.stderr_tail()}"
        assert worker.metric("streamrec_assigned_partitions") is not None, "metrics endpoint did not answer"
        time.sleep(0.5)


# -- broker down at start ------------------------------------------------------------------------


def test_worker_started_before_the_broker_waits_then_applies_every_event(tmp_path, workers, fault_row):
    port = free_port()
    cfg = _cfg(f"127.0.0.1:{port}", tmp_path / "data")
    worker = workers(cfg)
    # ensure_topics gives up after 10 s; the worker logs that and retries instead of exiting. (Start-up
    # plus those 10 s: the deadline leaves room for a slow machine's imports.)
    worker.wait_for(lambda: "cannot reach Kafka" in worker.stderr_tail(), timeout_s=120, what="a retry line")
    _alive_and_serving(worker, 2.0)
    assert worker.metric("streamrec_assigned_partitions") == 0

    events = _events(1500, seed=21)
    with EmbeddedBroker(port=port, start_timeout_s=120):
        ensure_topics(cfg.kafka)
        producer = AckedProducer(cfg)
        producer.send(events)
        assert producer.flush() == 0 and not producer.failed
        worker.wait_for(lambda: _applied(cfg) >= len(producer.acked), timeout_s=180, what="every event applied")
        worker.stop(signal.SIGTERM)
        assert worker.proc.returncode == 0, worker.stderr_tail()

    reflected, duplicates, lost = _tally(cfg, producer.acked)
    row = fault_row(
        "broker down at worker start",
        "worker waits, then every event applied once",
        len(producer.acked),
        reflected,
        duplicates,
        lost,
    )
    assert row.held, row


# -- broker restart with durable storage ------------------------------------------------------------


@pytest.fixture
def s3_broker(tmp_path):
    """A Tansu broker on ``s3://`` storage: a bucket on a loopback S3 server (moto) that outlives
    the broker's restarts, as S3 or MinIO would."""
    pytest.importorskip("moto.server", reason="the durable-broker tests need moto[server] (an S3 server)")
    import boto3

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with open(tmp_path / "s3.log", "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120  # moto's imports take seconds, more on a slow machine
        while True:
            try:
                urllib.request.urlopen(endpoint, timeout=5)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "s3.log").read_text()
                time.sleep(0.1)
        bucket = f"tansu-{uuid.uuid4().hex[:8]}"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="streamrec",
            aws_secret_access_key="streamrec",
            region_name="us-east-1",
        ).create_bucket(Bucket=bucket)
        broker = EmbeddedBroker(
            storage=f"s3://{bucket}/",
            start_timeout_s=120,
            env={
                "AWS_ENDPOINT": endpoint,
                "AWS_ALLOW_HTTP": "true",
                "AWS_ACCESS_KEY_ID": "streamrec",
                "AWS_SECRET_ACCESS_KEY": "streamrec",
                "AWS_DEFAULT_REGION": "us-east-1",
            },
        )
        try:
            yield broker.start()
        finally:
            broker.stop()
    finally:
        server.terminate()
        server.wait(10)


def _snapshot_progress(data_dir: Path, topic: str) -> int:
    partitions = (data_dir / "snapshots" / topic).glob("*")
    return sum(max((int(f.stem) for f in d.glob("*.snap")), default=0) for d in partitions)


@pytest.mark.parametrize(
    "sig",
    [pytest.param(signal.SIGTERM, id="SIGTERM"), pytest.param(signal.SIGKILL, id="SIGKILL", marks=pytest.mark.slow)],
)
def test_durable_broker_restart_mid_stream_loses_no_acknowledged_event(s3_broker, tmp_path, workers, fault_row, sig):
    broker, data = s3_broker, tmp_path / "data"
    cfg = _cfg(broker.bootstrap_servers, data)
    ensure_topics(cfg.kafka)
    events = _events(2000, seed=22)
    a, b = int(len(events) * 0.4), int(len(events) * 0.8)
    producer = AckedProducer(cfg)
    producer.send(events[:a])
    assert producer.flush() == 0 and not producer.failed

    worker = workers(cfg, extra=[*SLOW_WORKER, "--log-level", "INFO"])
    worker.wait_for(
        lambda: _snapshot_progress(data, cfg.kafka.events_topic) > 0, timeout_s=120, what="a first checkpoint"
    )
    stopped_at = _snapshot_progress(data, cfg.kafka.events_topic)
    broker.stop(sig=sig)
    down = time.monotonic()
    # Away longer than the group session (6 s): the worker loses its partitions and must rejoin.
    producer.send(events[a:b])  # buffered by the producer, delivered after the restart
    _alive_and_serving(worker, 8.0)
    acked_while_down = len(producer.acked) - a
    broker.start()
    restarted_after = time.monotonic() - down
    assert producer.flush() == 0 and not producer.failed, producer.failed[:3]
    producer.send(events[b:])
    assert producer.flush() == 0 and not producer.failed

    acked = producer.acked
    worker.wait_for(lambda: _applied(cfg) >= len(acked), timeout_s=240, what="every acknowledged event applied")
    worker.stop(signal.SIGTERM)
    assert worker.proc.returncode == 0, worker.stderr_tail()

    # The broker kept every acknowledged event once (no loss, no duplicate from producer retries).
    logged = read_topic(cfg, cfg.kafka.events_topic, expected=len(acked))
    assert len(logged) == len(acked) == len({msgspec.json.decode(m.value())["event_id"] for m in logged})
    # The group session ran out while the broker was away: the partitions came back to the worker,
    # which resumed them from its snapshots (same topic before and after: nothing set aside).
    assert "restored the snapshot" in _log(worker)
    assert not list((data / "snapshots" / cfg.kafka.events_topic).glob("*/replaced-*"))
    reflected, duplicates, lost = _tally(cfg, acked)
    print(
        f"\n{sig.name}: {len(events):,} events, {a:,} before the worker; snapshots at {stopped_at:,} when the "
        f"broker stopped; {acked_while_down} acknowledged while it was away; back after {restarted_after:.1f} s; "
        f"{reflected:,} reflected, {duplicates} duplicates, {lost} lost"
    )
    row = fault_row(
        f"broker restart mid-stream ({sig.name}, s3 storage)",
        "every acknowledged event applied once",
        len(acked),
        reflected,
        duplicates,
        lost,
    )
    assert row.held, row


# -- broker restart with in-memory storage: the limit -------------------------------------------------


def test_in_memory_broker_restart_keeps_applied_state_and_applies_the_new_log(tmp_path, workers, fault_row):
    """What an in-memory restart keeps: the state the workers applied (in their snapshots). What it
    loses: everything the broker held, including acknowledged events no worker had applied yet. The
    worker must not crash-loop, and must not skip the new log's events because its snapshots'
    offsets are ahead of the re-created, empty topic."""
    data = tmp_path / "data"
    with EmbeddedBroker(start_timeout_s=120) as broker:  # of its own: the session broker's topics must stay
        cfg = _cfg(broker.bootstrap_servers, data)
        ensure_topics(cfg.kafka)
        events = _events(1600, seed=23)
        a, b = int(len(events) * 0.45), int(len(events) * 0.5)
        before, unapplied = AckedProducer(cfg), AckedProducer(cfg)
        before.send(events[:a])
        assert before.flush() == 0 and not before.failed
        worker = workers(cfg, extra=["--log-level", "INFO"])
        worker.wait_for(lambda: _applied(cfg) >= a, timeout_s=120, what="the first events applied")
        worker.wait_for(lambda: _snapshot_progress(data, cfg.kafka.events_topic) >= a, what="their checkpoints")
        old_offsets = _snapshot_progress(data, cfg.kafka.events_topic)

        # Acknowledged, never applied: the worker is paused until the broker has gone.
        worker.proc.send_signal(signal.SIGSTOP)
        paused = psutil.Process(worker.proc.pid)  # the signal is asynchronous: wait until it took effect
        worker.wait_for(lambda: paused.status() == psutil.STATUS_STOPPED, timeout_s=30, what="the worker to stop")
        # A fetch it sent just before is answered (empty) first, not with these events: the broker holds
        # a fetch at most fetch.wait.max.ms (10 ms); this is that wait with a wide margin.
        time.sleep(1.0)
        unapplied.send(events[a:b])
        assert unapplied.flush() == 0 and not unapplied.failed
        broker.stop()
        worker.proc.send_signal(signal.SIGCONT)
        _alive_and_serving(worker, 4.0)  # no broker: the worker waits

        broker.start()  # same port, empty: no topics, no records, no committed offsets
        assert (
            cfg.kafka.events_topic
            not in AdminClient({"bootstrap.servers": broker.bootstrap_servers}).list_topics(timeout=30).topics
        )  # the topics are gone
        ensure_topics(cfg.kafka)  # as an operator (or a restarted worker) would
        # A new producer: Tansu forgot the idempotent producer ids it had handed out, and a producer
        # from before the restart stalls (measured: 100 of 100 sends undelivered after 30 s).
        after = AckedProducer(cfg)
        after.send(events[b:])
        assert after.flush() == 0 and not after.failed
        expected = before.acked | after.acked
        worker.wait_for(lambda: _applied(cfg) >= len(expected), timeout_s=180, what="the new log applied")
        worker.stop(signal.SIGTERM)
        assert worker.proc.returncode == 0, worker.stderr_tail()

    reflected, duplicates, lost = _tally(cfg, expected)
    _, _, lost_with_broker = _tally(cfg, unapplied.acked)
    # The limit, as it is: acknowledged, unapplied events went with the in-memory broker.
    assert lost_with_broker == len(unapplied.acked) > 0
    # The snapshots of the old log were set aside (not deleted, not trusted for the new log).
    snaps = data / "snapshots" / cfg.kafka.events_topic
    assert len(list(snaps.glob("*/replaced-*/*.snap"))) >= cfg.kafka.partitions
    assert "is a new topic" in _log(worker)
    print(
        f"\nin-memory restart: {a:,} applied before it (snapshots at {old_offsets:,}); {len(unapplied.acked):,} "
        f"acknowledged but unapplied, lost with the broker; {len(after.acked):,} produced after it; "
        f"{reflected:,} of {len(expected):,} reflected, {duplicates} duplicates, {lost} lost"
    )
    row = fault_row(
        "in-memory broker restart (unapplied events go with it)",
        "applied state kept; new log applied once",
        len(expected),
        reflected,
        duplicates,
        lost,
    )
    assert row.held, row
