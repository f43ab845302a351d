"""The API over a real partition state and scorer, with the worker and Kafka replaced by stand-ins."""

from __future__ import annotations

import concurrent.futures
import itertools

from prometheus_client import CollectorRegistry

from serving.api import create_app
from serving.backend import Accepted, ServingBackend
from serving.metrics import ServingMetrics
from serving.scorer import Scorer
from stream.events import EventCodec
from stream.kafka.partitioner import partition_for
from stream.owned_partition import OwnedPartition


class Owner:
    """Owns ``owned`` of ``count`` partitions, all holding the same processor."""

    def __init__(self, processor, count: int = 1, owned: tuple[int, ...] = (0,)) -> None:
        self.count = count
        self.owned = {p: OwnedPartition(processor, 0, 0) for p in owned}

    def partition_count(self) -> int:
        return self.count


class Ingest:
    """Validates like the real ingest; 'produces' by resolving the future at once."""

    def __init__(self, max_bytes: int) -> None:
        self.codec = EventCodec(max_bytes)
        self.accepted: list[bytes] = []
        self.offsets = itertools.count()

    def submit(self, payload: bytes) -> concurrent.futures.Future:
        event = self.codec.decode(payload)
        self.accepted.append(payload)
        future: concurrent.futures.Future = concurrent.futures.Future()
        future.set_result(Accepted(event.event_id, partition_for(event.user_id, 4), next(self.offsets)))
        return future


def make_app(cfg, processor, owner: Owner | None = None, model=None, forwarder=None):
    metrics = ServingMetrics(CollectorRegistry())
    scorer = Scorer(cfg.serving, metrics)
    if model is not None:
        scorer.swap(model)
    ingest = Ingest(cfg.events.max_bytes)
    backend = ServingBackend(owner or Owner(processor), scorer, ingest, cfg.serving.max_k, forwarder)
    return create_app(backend, cfg, metrics), metrics, ingest
