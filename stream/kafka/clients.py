"""confluent-kafka client settings. Every non-default setting says why.

librdkafka's own log lines go to the ``stream.kafka.clients.librdkafka`` logger (syslog levels
mapped to logging's by confluent-kafka: 3 ERROR, 4 WARNING, 5-6 INFO, 7 DEBUG). They are handed
over when a client is polled, so every client here is polled by whoever uses it.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from stream.config import KafkaConfig

LIBRDKAFKA = logging.getLogger(__name__ + ".librdkafka")

# librdkafka reconnects by itself; these say a broker is (still) away. A broker that restarts or
# shuts down (the demo's end, the fault tests) makes every client say so at ERROR, dozens of times.
_RECONNECTING = ("Connection refused", "Disconnected", "brokers are down", "Connection reset", "timed out")


class TransportNoise(logging.Filter):
    """Moves librdkafka's lost-connection lines to DEBUG. A broker that stays away still shows as
    consumer errors, delivery failures and lag; the lines themselves add nothing but noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG and any(s in record.getMessage() for s in _RECONNECTING):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return LIBRDKAFKA.isEnabledFor(logging.DEBUG)
        return True


LIBRDKAFKA.addFilter(TransportNoise())


def _base(cfg: KafkaConfig) -> dict[str, Any]:
    return {
        "bootstrap.servers": cfg.bootstrap_servers,
        # librdkafka's lines through Python logging (handed over on poll) instead of its own
        # "%3|...|FAIL|..." lines written straight to stderr, after a command's result among others.
        "logger": LIBRDKAFKA,
        **cfg.client_overrides,
    }


def consumer_config(cfg: KafkaConfig, group_id: str | None = None) -> dict[str, Any]:
    return {
        **_base(cfg),
        "group.id": group_id or cfg.group_id,
        # Offsets are committed by the worker only after the snapshot that reflects them is durable.
        "enable.auto.commit": False,
        # The worker seeks to its snapshot offsets; it must not have librdkafka store them for it.
        "enable.auto.offset.store": False,
        # A partition with neither snapshot nor committed offset starts from its beginning: no event is skipped.
        "auto.offset.reset": "earliest",
        # Defaults (45 s / 3 s) make a group join take ~23 s on Tansu; 6 s / 0.5 s measured ~3 s,
        # and a dead worker's partitions move within 6 s.
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        # Tansu answers a fetch only when this wait is over, even when data is waiting (Kafka answers
        # as soon as fetch.min.bytes is there): at the default 500 ms, recommendations were 200 ms
        # (p50) behind their events; at 10 ms, 55 ms. Idle consumers fetch more often in exchange.
        "fetch.wait.max.ms": 10,
        # Incremental rebalancing: surviving workers keep their partitions (and warm state) while others move.
        "partition.assignment.strategy": "cooperative-sticky",
        **cfg.client_overrides,
    }


def producer_config(cfg: KafkaConfig, **extra: Any) -> dict[str, Any]:
    return {
        **_base(cfg),
        # Retries must not duplicate or reorder a user's events.
        "enable.idempotence": True,
        # The Java client's partitioner (murmur2), so every producer -- Java or librdkafka -- puts a
        # user in the same partition and requests can be routed by the same function.
        "partitioner": "murmur2_random",
        # Batch for throughput; 5 ms adds little to freshness.
        "linger.ms": 5,
        "compression.type": "lz4",
        **extra,
        **cfg.client_overrides,
    }


def make_consumer(cfg: KafkaConfig, group_id: str | None = None, **extra: Any) -> Consumer:
    return Consumer({**consumer_config(cfg, group_id), **extra})


def make_producer(cfg: KafkaConfig, **extra: Any) -> Producer:
    return Producer(producer_config(cfg, **extra))


def make_admin(cfg: KafkaConfig) -> AdminClient:
    """An admin client; poll it (``admin.poll(0)``) after a call to hand over its log lines."""
    return AdminClient(_base(cfg))


def produce_waiting(producer: Producer, topic: str, value: bytes | None, **kwargs: Any) -> None:
    """``produce`` that waits while librdkafka's local queue is full instead of raising BufferError."""
    while True:
        try:
            producer.produce(topic, value, **kwargs)
            return
        except BufferError:  # let librdkafka deliver, then retry
            producer.poll(0.05)


def assign_whole_topic(consumer: Consumer, topic: str, offset: int, setting: str) -> None:
    """Assign every partition of ``topic`` from ``offset`` (e.g. OFFSET_BEGINNING): a reader outside
    any consumer group. Raises RuntimeError naming ``setting`` (the config field holding the topic's
    name) if the topic does not exist."""
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    if not partitions:
        raise RuntimeError(
            f"topic {topic!r} does not exist; create it (streamrec commands create their topics at start) "
            f"or fix {setting}"
        )
    consumer.assign([TopicPartition(topic, p, offset) for p in partitions])


def ensure_topics(cfg: KafkaConfig, timeout_s: float = 10.0) -> None:
    """Create the events, dead-letter, signals, recommendations, model-updates and workers topics if
    they do not exist (idempotent)."""
    admin = make_admin(cfg)
    existing = admin.list_topics(timeout=timeout_s).topics
    wanted = [
        NewTopic(cfg.events_topic, cfg.partitions, 1),
        NewTopic(cfg.dlq_topic, 1, 1),
        NewTopic(cfg.signals_topic, 1, 1),
        NewTopic(cfg.recommendations_topic, cfg.partitions, 1),
        NewTopic(cfg.model_updates_topic, 1, 1),
        # The latest advert per worker is all a reader needs (serving.adverts).
        NewTopic(cfg.workers_topic, 1, 1, config={"cleanup.policy": "compact"}),
    ]
    missing = [t for t in wanted if t.topic not in existing]
    if missing:
        for future in admin.create_topics(missing, operation_timeout=timeout_s).values():
            try:
                future.result()
            except Exception as exc:  # a concurrent creator may have won the race
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise
    admin.poll(0)
