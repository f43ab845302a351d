"""What the HTTP API stands on: the partitions this process owns, the scorer, and an event ingest.

Routing: a user's state lives in partition ``murmur2(user_id) mod partitions`` (the producers'
partitioner), owned by exactly one worker of the group. A request for a user whose partition this
process does not own goes on to the owner through the ``forwarder`` (``serving.forward``), or is
answered ``421 Misdirected Request`` naming the partition when this worker does not forward.
"""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Protocol

import msgspec
from confluent_kafka import KafkaError, Message, Producer

from serving.forward import Forwarder
from serving.scorer import Recommendation, Scorer
from stream.events import EventCodec
from stream.kafka.clients import produce_waiting
from stream.kafka.partitioner import partition_for
from stream.owned_partition import OwnedPartition


class PartitionOwner(Protocol):
    """The stream worker, as the API sees it."""

    owned: dict[int, OwnedPartition]

    def partition_count(self) -> int: ...


class NotOwned(Exception):
    def __init__(self, partition: int) -> None:
        super().__init__(f"partition {partition} is owned by another worker")
        self.partition = partition


class NotReady(Exception):
    """No partition assigned yet (the worker is joining its group)."""


class Accepted(msgspec.Struct, frozen=True):
    """An event Kafka acknowledged: where it was written."""

    event_id: str
    partition: int
    offset: int


class EventIngest:
    """Validated events -> the events topic, with a future per event resolved by the broker's ack."""

    def __init__(self, producer: Producer, topic: str, codec: EventCodec) -> None:
        self.producer = producer
        self.topic = topic
        self.codec = codec
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="ingest-delivery", daemon=True)

    def start(self) -> None:
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.05)

    def submit(self, payload: bytes) -> concurrent.futures.Future[Accepted]:
        """Decode strictly (raises InvalidEvent), then produce keyed by user id, as producers do."""
        event = self.codec.decode(payload)
        future: concurrent.futures.Future[Accepted] = concurrent.futures.Future()

        def delivered(err: KafkaError | None, msg: Message) -> None:
            partition, offset = msg.partition(), msg.offset()
            if err is not None or partition is None or offset is None:
                reason = err.str() if err is not None else "no partition or offset in the acknowledgement"
                future.set_exception(RuntimeError(f"Kafka did not accept the event: {reason}"))
            else:
                future.set_result(Accepted(event.event_id, partition, offset))

        produce_waiting(self.producer, self.topic, payload, key=event.user_id.encode(), on_delivery=delivered)
        return future

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._poller.is_alive():
            self._poller.join(2)
        self.producer.flush(timeout_s)


class ServingBackend:
    def __init__(
        self,
        owner: PartitionOwner,
        scorer: Scorer,
        ingest: EventIngest,
        max_k: int,
        forwarder: Forwarder | None = None,
    ) -> None:
        self.owner = owner
        self.scorer = scorer
        self.ingest = ingest
        self.max_k = max_k
        self.forwarder = forwarder

    def partition_of(self, user_id: str) -> int:
        """Raises NotReady while the events topic's partition count cannot be read (the broker is
        unreachable, or the worker's consumer closed as it shuts down): retryable, not an error."""
        try:
            count = self.owner.partition_count()
        except Exception as exc:
            raise NotReady(f"the events topic's partition count is unknown ({exc})") from exc
        return partition_for(user_id, count)

    def recommend(self, user_id: str, k: int, exclude: tuple[str, ...] = ()) -> Recommendation:
        """Raises NotOwned for another worker's user, NotReady (unless forwarding) before any assignment."""
        owned_now = self.owner.owned
        if not owned_now and self.forwarder is None:
            raise NotReady("no partition assigned yet")
        partition = self.partition_of(user_id)
        owned = owned_now.get(partition)
        if owned is None:
            raise NotOwned(partition)
        return self.scorer.recommend(owned.processor, user_id, k, exclude, lock=owned.lock)

    def readiness(self) -> tuple[bool, dict[str, object]]:
        partitions = sorted(self.owner.owned)
        status: dict[str, object] = {"partitions": partitions, "model_version": self.scorer.version}
        return bool(partitions), status
