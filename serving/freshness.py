"""Freshness as docs/explanation/definitions.md defines it: from an event's own timestamp (set by its producer) to the
moment the recommendation it triggered is read back from the recommendations topic."""

from __future__ import annotations

import threading
import time
import uuid

import msgspec
from confluent_kafka import OFFSET_END, Consumer, TopicPartition

from serving.publish import RecommendationMessage
from stream.config import KafkaConfig
from stream.kafka.clients import consumer_config

_decoder = msgspec.json.Decoder(RecommendationMessage)


class FreshnessProbe:
    """Reads the recommendations topic from its end on a thread; one sample (ms) per message."""

    def __init__(self, cfg: KafkaConfig) -> None:
        self.topic = cfg.recommendations_topic
        # assign(), not subscribe(): a probe reads every partition and joins no group.
        self.consumer = Consumer(
            {
                **consumer_config(cfg, group_id=f"freshness-{uuid.uuid4().hex[:8]}"),
                # The broker answers a fetch at once rather than waiting up to 500 ms for
                # more bytes: the probe measures the pipeline, not its own fetch.
                "fetch.wait.max.ms": 10,
            }
        )
        self.samples_ms: list[float] = []
        self.compute_ms: list[float] = []  # event timestamp -> recommendation computed (the worker's share)
        self.versions: set[int | None] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="freshness-probe", daemon=True)

    def start(self) -> None:
        partitions = self.consumer.list_topics(self.topic, timeout=10).topics[self.topic].partitions
        self.consumer.assign([TopicPartition(self.topic, p, OFFSET_END) for p in partitions])
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for msg in self.consumer.consume(1000, 0.05):
                value = msg.value()
                if msg.error() is not None or value is None:
                    continue
                now_ms = time.time() * 1000.0
                rec = _decoder.decode(value)
                self.samples_ms.append(now_ms - rec.event_ts_ms)
                self.compute_ms.append(rec.computed_at_ms - rec.event_ts_ms)
                self.versions.add(rec.model_version)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.consumer.close()
