"""librdkafka's own log lines reach Python logging, and a broker that is away does not shout; a
reader of a whole topic gets every partition, or one line naming the setting to fix."""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace

import pytest
from confluent_kafka import OFFSET_BEGINNING, Producer

from stream.config import KafkaConfig
from stream.kafka.broker import free_port
from stream.kafka.clients import LIBRDKAFKA, TransportNoise, assign_whole_topic, make_admin, producer_config


def _refused(caplog, level: int) -> list[logging.LogRecord]:
    """Log lines of a producer pointed at a port nobody listens on, handed over by its poll."""
    caplog.set_level(level, logger=LIBRDKAFKA.name)
    producer = Producer(producer_config(KafkaConfig(bootstrap_servers=f"127.0.0.1:{free_port()}")))
    deadline = time.monotonic() + 10
    while not [r for r in caplog.records if r.name == LIBRDKAFKA.name] and time.monotonic() < deadline:
        producer.poll(0.1)
    return [r for r in caplog.records if r.name == LIBRDKAFKA.name]


def test_librdkafka_lines_go_through_logging_not_straight_to_stderr(caplog, capfd):
    records = _refused(caplog, logging.DEBUG)
    assert any("Connection refused" in r.getMessage() for r in records)
    assert "%3|" not in capfd.readouterr().err  # librdkafka's own printer is not used


def test_connection_refused_is_debug_and_silent_at_info(caplog):
    assert all(r.levelno == logging.DEBUG for r in _refused(caplog, logging.DEBUG))
    caplog.clear()
    assert _refused(caplog, logging.INFO) == []


def _record(level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord(LIBRDKAFKA.name, level, __file__, 1, message, None, None)


def test_other_librdkafka_errors_keep_their_level():
    record = _record(logging.ERROR, "FAIL [rdkafka#producer-1] SASL authentication failed")
    assert TransportNoise().filter(record) and record.levelno == logging.ERROR


def test_the_admin_client_logs_through_the_same_logger(caplog):
    caplog.set_level(logging.DEBUG, logger=LIBRDKAFKA.name)
    admin = make_admin(KafkaConfig(bootstrap_servers=f"127.0.0.1:{free_port()}"))
    deadline = time.monotonic() + 10
    while not caplog.records and time.monotonic() < deadline:
        admin.poll(0.1)
    assert any("Connection refused" in r.getMessage() for r in caplog.records)


class TopicConsumer:
    """Answers metadata for one topic of ``partitions`` partitions (none: librdkafka's answer for a
    topic that does not exist) and records its assignment."""

    def __init__(self, partitions: int) -> None:
        self.partitions = {p: object() for p in range(partitions)}
        self.assigned: list = []

    def list_topics(self, topic: str, timeout: float):
        return SimpleNamespace(topics={topic: SimpleNamespace(partitions=self.partitions)})

    def assign(self, partitions: list) -> None:
        self.assigned = partitions


def test_a_whole_topic_is_assigned_partition_by_partition_from_the_offset():
    consumer = TopicConsumer(3)
    assign_whole_topic(consumer, "workers", OFFSET_BEGINNING, "kafka.workers_topic")
    assert [(tp.topic, tp.partition, tp.offset) for tp in consumer.assigned] == [
        ("workers", p, OFFSET_BEGINNING) for p in range(3)
    ]


def test_a_missing_topic_is_one_line_naming_the_setting():
    consumer = TopicConsumer(0)
    with pytest.raises(RuntimeError, match=r"'workers' does not exist.*fix kafka\.workers_topic"):
        assign_whole_topic(consumer, "workers", OFFSET_BEGINNING, "kafka.workers_topic")
    assert consumer.assigned == []
