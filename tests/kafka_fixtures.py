"""Fixtures for tests against a real broker (tests/integration, tests/faults): one Tansu broker per
test session, configs with topics of their own, worker subprocesses, and helpers to read topics and
snapshots. Registered once for the whole suite by tests/conftest.py (pytest_plugins)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import msgspec
import pytest
from confluent_kafka import Consumer, TopicPartition

from stream.config import Config, load_config
from stream.kafka.broker import EmbeddedBroker, free_port
from stream.kafka.clients import ensure_topics, make_producer
from stream.processor import PartitionProcessor
from stream.snapshot import SnapshotStore
from streamrec.soak import scrape, total

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def broker():
    with EmbeddedBroker(start_timeout_s=120) as b:  # a deadline: it returns once the broker answers
        yield b


@pytest.fixture
def kafka_cfg(broker, tmp_path) -> Config:
    """A config with a fresh topic and group of its own on the shared broker."""
    name = f"t{uuid.uuid4().hex[:8]}"
    cfg = load_config(
        env={},
        overrides=[
            f"kafka.bootstrap_servers='{broker.bootstrap_servers}'",
            f"kafka.events_topic='{name}'",
            f"kafka.group_id='{name}-g'",
            "kafka.partitions=4",
            f"worker.data_dir='{tmp_path / 'data'}'",
            "worker.snapshot_every_events=2000",
            "worker.snapshot_every_s=1.0",
            "metrics.port=0",
        ],
    )
    ensure_topics(cfg.kafka)
    return cfg


def produce_raw(cfg: Config, messages: list[tuple[bytes | None, bytes | None]]) -> None:
    """Produce (key, value) pairs as they are, in order."""
    producer = make_producer(cfg.kafka)
    for key, value in messages:
        producer.produce(cfg.kafka.events_topic, value, key=key)
    assert producer.flush(120) == 0  # returns once delivered: the deadline only bounds a slow machine


def read_topic(cfg: Config, topic: str, expected: int, timeout_s: float = 120.0) -> list:
    """Every message of ``topic``, read until ``expected`` arrived (or ``timeout_s``: a generous
    deadline for a slow machine -- a read that finds them all returns at once)."""
    consumer = Consumer(
        {
            "bootstrap.servers": cfg.kafka.bootstrap_servers,
            "group.id": f"r{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    out, deadline = [], time.monotonic() + timeout_s
    while len(out) < expected and time.monotonic() < deadline:
        out += [m for m in consumer.consume(1000, 0.5) if m.error() is None]
    # A little longer: more than expected would be a failure too.
    out += [m for m in consumer.consume(1000, 1.0) if m.error() is None]
    consumer.close()
    return out


def final_states(cfg: Config, data_dir: Path | None = None) -> dict[int, PartitionProcessor]:
    store = SnapshotStore(Path(data_dir or cfg.worker.data_dir) / "snapshots")
    out = {}
    for p in range(cfg.kafka.partitions):
        snap = store.latest(cfg.kafka.events_topic, p)
        if snap is not None:
            out[p] = PartitionProcessor.from_state(cfg, snap.state)
    return out


class WorkerProcess:
    """``streamrec stream`` (or ``serve``: a worker that also serves) in a child process, with its own
    metrics port."""

    def __init__(
        self,
        cfg: Config,
        data_dir: Path | None = None,
        group: str | None = None,
        idle_exit: float | None = None,
        extra: list[str] = (),
        command: str = "stream",
    ) -> None:
        self.port = free_port()
        args = [
            sys.executable,
            "-m",
            "streamrec.cli",
            command,
            "--bootstrap-servers",
            cfg.kafka.bootstrap_servers,
            "--metrics-port",
            str(self.port),
            "--data-dir",
            str(data_dir or cfg.worker.data_dir),
            "--set",
            f"kafka.events_topic='{cfg.kafka.events_topic}'",
            "--set",
            f"kafka.group_id='{group or cfg.kafka.group_id}'",
            "--set",
            f"worker.snapshot_every_events={cfg.worker.snapshot_every_events}",
            "--set",
            f"worker.snapshot_every_s={cfg.worker.snapshot_every_s}",
            *extra,
        ]
        if idle_exit is not None:
            args += ["--idle-exit", str(idle_exit)]
        # stderr to a file: a pipe nobody reads would block a chatty worker.
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed in stop(): it outlives this call)
            prefix="streamrec-worker-", suffix=".log", delete=False
        )
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL, stderr=self.log
        )

    def stderr_tail(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-2000:]

    def metric(self, name: str) -> float | None:
        """The sum of ``name``'s samples on the worker's endpoint; None if it or the metric is missing."""
        # A generous timeout: a busy worker on a slow machine may take over a second to answer, and a
        # scrape that times out reads as "no metrics" (None), which some tests assert against.
        metrics = scrape(self.port, timeout_s=10.0)
        return None if metrics is None or name not in metrics else total(metrics, name)

    def wait_for(self, predicate, timeout_s: float = 120.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"worker exited ({self.proc.returncode}) while waiting for {what}: {self.stderr_tail()}"
                )
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")

    def wait_exit(self, timeout_s: float = 300.0) -> int:
        code = self.proc.wait(timeout_s)
        return code

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def workers():
    """Started workers, all stopped at teardown whatever the test did."""
    started: list[WorkerProcess] = []

    def start(*args, **kwargs) -> WorkerProcess:
        w = WorkerProcess(*args, **kwargs)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop(signal.SIGKILL)
        w.log.close()
        os.unlink(w.log.name)


def encode(obj) -> bytes:
    return msgspec.json.encode(obj)
