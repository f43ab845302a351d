"""What the worker writes to Kafka besides its offsets: dead letters and drift signals, each with a
delivery check that a checkpoint waits for (``delivered``)."""

import logging
import operator
from typing import Any

import msgspec
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from stream.config import Config
from stream.events import Event
from stream.kafka.clients import produce_waiting
from stream.metrics import WorkerMetrics

log = logging.getLogger(__name__)

DLQ_DETAIL_MAX = 512
# msg.headers() through the C API: confluent-kafka returns a header key that is not UTF-8 with a
# UnicodeDecodeError left pending, and CPython's specialised call of a C method (a hot loop's) does
# not check for that, so the error would surface at some later, unrelated line. This call is checked:
# it raises SystemError right here.
_read_headers = operator.methodcaller("headers")

Headers = list[tuple[str, bytes | None]]


class DeliveryFailed(Exception):
    """A dead letter or signal was refused by Kafka: stop, so a restart replays and re-sends it."""


class Outbox:
    def __init__(self, cfg: Config, producer: Producer, metrics: WorkerMetrics) -> None:
        self.kafka = cfg.kafka
        self.max_bytes = cfg.events.max_bytes
        self.producer = producer
        self.metrics = metrics
        self._delivery_errors: list[str] = []

    def produce(self, topic: str, value: bytes | None, **kwargs: Any) -> None:
        """Produce with a delivery check; a full local queue waits instead of raising."""
        produce_waiting(self.producer, topic, value, on_delivery=self._on_delivery, **kwargs)

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._delivery_errors.append(f"{msg.topic()}: {err}")

    def delivered(self, timeout_s: float = 10.0) -> None:
        """Return once everything produced is in Kafka; raise if anything was refused or is stuck."""
        if self.producer.flush(timeout_s) > 0:
            raise RuntimeError(f"producer could not deliver dead letters within {timeout_s:g} s")
        if self._delivery_errors:
            raise DeliveryFailed("; ".join(self._delivery_errors[:5]))

    def signal_drift(self, partition: int, learner: str, position: int, event: Event) -> None:
        """A processor's drift hook (bound to its partition): counted, logged and signalled."""
        self.metrics.drift.labels(learner).inc()
        log.warning("drift detected on %s in partition %d at event %s", learner, partition, event.event_id)
        signal = {
            "kind": "drift",
            "learner": learner,
            "partition": partition,
            "position": position,
            "event_id": event.event_id,
            "ts": event.ts,
        }
        self.produce(self.kafka.signals_topic, msgspec.json.encode(signal))

    def dead_letter(self, msg: Message, reason: str, detail: str) -> None:
        """The original bytes, key and headers to ``<events>.dlq``, with ours saying why and where from."""
        original, ours = _headers(msg, reason, detail)
        try:
            self.produce(self.kafka.dlq_topic, msg.value(), key=msg.key(), headers=original + ours)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.MSG_SIZE_TOO_LARGE:
                raise
            self._dead_letter_head(msg, original, ours)
        self.metrics.dead_lettered.labels(reason).inc()

    def _dead_letter_head(self, msg: Message, original: Headers, ours: Headers) -> None:
        """A message just under the producer's message.max.bytes, which our headers tip over: raising
        would stop the worker on it after every restart. Dead-letter its head (the source offset
        locates the whole) with the original sizes."""
        value, key, cut = msg.value(), msg.key(), self.max_bytes
        sizes = f"value={len(value or b'')} key={len(key or b'')} headers={len(original)}"
        self.produce(
            self.kafka.dlq_topic,
            None if value is None else value[:cut],
            key=None if key is None else key[:cut],
            headers=[*ours, ("streamrec.dlq.truncated", sizes.encode())],
        )


def _headers(msg: Message, reason: str, detail: str) -> tuple[Headers, Headers]:
    """The message's own headers, and ours: the reason, the detail and the source position."""
    ours: Headers = [
        ("streamrec.dlq.reason", reason.encode()),
        ("streamrec.dlq.detail", detail[:DLQ_DETAIL_MAX].encode()),
        ("streamrec.source.topic", str(msg.topic()).encode()),
        ("streamrec.source.partition", str(msg.partition()).encode()),
        ("streamrec.source.offset", str(msg.offset()).encode()),
    ]
    try:
        original: Headers = list(_read_headers(msg) or [])
    except (SystemError, UnicodeDecodeError):
        # A header key that is not UTF-8 (other clients can send one): leave the headers out
        # rather than stop on this message after every restart.
        original, ours = [], [*ours, ("streamrec.dlq.truncated", b"headers=unreadable")]
    return original, ours
