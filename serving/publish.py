"""Publish each user's fresh top-k to the recommendations topic after the events that change it.

Runs on the worker's thread right after a batch is applied (``StreamWorker(listener=...)``), so it
reads state the worker just wrote. Per batch, a user gets one recomputation, for
their last qualifying event (``serving.publish_on``): a burst of clicks yields the recommendation
that reflects all of them, not one per click.

Message (JSON, key = user id; the topic is a changelog of each user's latest list)::

    {"user_id": "u1", "items": ["i3", ...], "scores": [1.9, ...], "model_version": 4,
     "fallback": null, "event_id": "e-17", "event_ts_ms": 1767225600000,
     "computed_at_ms": 1767225600042}

Delivery is at-least-once: a worker restarted from a snapshot re-applies, and re-publishes for,
the events after it. A failure to compute or produce one user's list is logged and counted; it
never stops the worker (recommendations are derived data; the next event recomputes them).
"""

from __future__ import annotations

import functools
import logging
import threading
import time

import msgspec
from confluent_kafka import KafkaError, Message, Producer

from serving.metrics import ServingMetrics
from serving.scorer import Scorer
from stream.events import Event
from stream.kafka.clients import produce_waiting
from stream.owned_partition import OwnedPartition

log = logging.getLogger(__name__)


class RecommendationMessage(msgspec.Struct, kw_only=True):
    user_id: str
    items: list[str]
    scores: list[float]
    model_version: int | None
    fallback: str | None
    event_id: str  # the event that triggered this recomputation
    event_ts_ms: int  # its producer-set timestamp
    computed_at_ms: int


_encoder = msgspec.json.Encoder()


class RecommendationPublisher:
    def __init__(
        self,
        scorer: Scorer,
        producer: Producer,
        topic: str,
        k: int,
        publish_on: list[str],
        metrics: ServingMetrics | None = None,
    ) -> None:
        self.scorer = scorer
        self.producer = producer
        self.topic = topic
        self.k = k
        self.publish_on = frozenset(publish_on)
        self.metrics = metrics
        self.failures = 0
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    def start(self) -> None:
        """Serve delivery reports on a thread of their own, so freshness is measured when the broker
        acknowledges, not when the worker next gets round to polling."""
        self._poller = threading.Thread(target=self._poll, name="recommendations-delivery", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.05)

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(2)
        self.producer.flush(timeout_s)

    def batch_applied(self, applied: list[tuple[OwnedPartition, Event]]) -> None:
        latest: dict[str, tuple[OwnedPartition, Event]] = {}
        for owned, event in applied:
            if event.type in self.publish_on:
                latest[event.user_id] = (owned, event)
        for user_id, (owned, event) in latest.items():
            try:
                self._publish(owned, user_id, event)
            except Exception:  # derived data: never stop the worker over it
                self.failures += 1
                log.exception("could not publish recommendations for the event %s", event.event_id)
                if self.metrics:
                    self.metrics.publish_failures.inc()

    def _publish(self, owned: OwnedPartition, user_id: str, event: Event) -> None:
        # The lock, although this thread is the state's only writer: the scorer's caches (item lists,
        # id maps) are shared with HTTP requests, which extend them under the same lock.
        rec = self.scorer.recommend(owned.processor, user_id, self.k, lock=owned.lock)
        message = RecommendationMessage(
            user_id=user_id,
            items=rec.items,
            scores=rec.scores,
            model_version=rec.model_version,
            fallback=rec.fallback,
            event_id=event.event_id,
            event_ts_ms=event.ts,
            computed_at_ms=int(time.time() * 1000),
        )
        produce_waiting(
            self.producer,
            self.topic,
            _encoder.encode(message),
            key=user_id.encode(),
            on_delivery=functools.partial(self._delivered, event.ts),
        )

    def _delivered(self, event_ts_ms: int, err: KafkaError | None, _msg: Message) -> None:
        if not self.metrics:
            return
        if err is not None:
            self.metrics.publish_failures.inc()
            log.warning("recommendation not delivered: %s", err)
            return
        self.metrics.published.inc()
        self.metrics.freshness_seconds.observe(max(0.0, time.time() - event_ts_ms / 1000.0))
