"""librdkafka's own log lines reach Python logging, and a broker that is away does not shout."""

from __future__ import annotations

import logging
import time

from confluent_kafka import Producer

from stream.config import KafkaConfig
from stream.kafka.broker import free_port
from stream.kafka.clients import LIBRDKAFKA, TransportNoise, make_admin, producer_config


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
