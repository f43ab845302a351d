"""confluent-kafka client settings. Every non-default setting says why."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from stream.config import KafkaConfig


def _base(cfg: KafkaConfig) -> dict[str, Any]:
    return {"bootstrap.servers": cfg.bootstrap_servers, **cfg.client_overrides}


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


def produce_waiting(producer: Producer, topic: str, value: bytes | None, **kwargs: Any) -> None:
    """``produce`` that waits while librdkafka's local queue is full instead of raising BufferError."""
    while True:
        try:
            producer.produce(topic, value, **kwargs)
            return
        except BufferError:  # let librdkafka deliver, then retry
            producer.poll(0.05)


def ensure_topics(cfg: KafkaConfig, timeout_s: float = 10.0) -> None:
    """Create the events, dead-letter, signals, recommendations and model-updates topics if they
    do not exist (idempotent)."""
    admin = AdminClient(_base(cfg))
    existing = admin.list_topics(timeout=timeout_s).topics
    wanted = [
        NewTopic(cfg.events_topic, cfg.partitions, 1),
        NewTopic(cfg.dlq_topic, 1, 1),
        NewTopic(cfg.signals_topic, 1, 1),
        NewTopic(cfg.recommendations_topic, cfg.partitions, 1),
        NewTopic(cfg.model_updates_topic, 1, 1),
    ]
    missing = [t for t in wanted if t.topic not in existing]
    if missing:
        for future in admin.create_topics(missing, operation_timeout=timeout_s).values():
            try:
                future.result()
            except Exception as exc:  # a concurrent creator may have won the race
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise
