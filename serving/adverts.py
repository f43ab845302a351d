"""The workers topic's two ends: publishing this worker's advert, and reading everyone's into a directory.

:class:`AdvertPublisher` watches the worker's ``owned`` map (the rebalance callbacks fill and empty
it on the worker's thread) and publishes a new advert within ``CHECK_S`` of a change, and the same
advert every ``interval_s`` as a heartbeat. ``stop`` publishes a tombstone, so a worker leaving
cleanly stops being named at once. :class:`DirectoryReader` reads the whole topic from its
beginning, every worker's adverts, into the :class:`~serving.directory.Directory`.

Lifecycle: ``start()`` after the topic exists, ``stop()`` before the process exits. A message the
reader cannot decode is logged and skipped: the directory is a hint, and the writer's next
heartbeat replaces it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping

import msgspec
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer

from serving.directory import ADVERT_CODEC, Claim, Directory, WorkerAdvert
from stream.config import ServingConfig
from stream.kafka.clients import assign_whole_topic, produce_waiting
from stream.owned_partition import OwnedPartition

log = logging.getLogger(__name__)

CHECK_S = 0.1  # how often the publisher looks for a change of assignment
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def advertised_url(serving: ServingConfig) -> str | None:
    """``serving.advertised_url``, else http://HOST:PORT for a listening address that is one host;
    None when the API is off or listens on every address (no URL the others could use is known)."""
    if not serving.port:
        return None
    if serving.advertised_url:
        return serving.advertised_url.rstrip("/")
    if serving.host in WILDCARD_HOSTS:
        return None
    host = f"[{serving.host}]" if ":" in serving.host else serving.host
    return f"http://{host}:{serving.port}"


def new_worker_id() -> str:
    """Unique per process: a restarted worker is a new one (its old advert expires or is replaced)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def claims_of(owned: Mapping[int, OwnedPartition]) -> list[Claim]:
    snapshot = dict(owned)  # one C-level copy: the worker's thread may be changing it
    return [Claim(p, int(snapshot[p].assigned_at * 1000)) for p in sorted(snapshot)]


class AdvertPublisher:
    def __init__(
        self,
        producer: Producer,
        topic: str,
        worker_id: str,
        url: str,
        owned: Mapping[int, OwnedPartition],
        interval_s: float,
    ) -> None:
        self.producer, self.topic = producer, topic
        self.worker_id, self.url = worker_id, url
        self.owned = owned
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="advert-publisher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        sent: list[Claim] | None = None
        sent_at = 0.0
        while not self._stop.wait(CHECK_S):
            claims = claims_of(self.owned)
            if claims != sent or time.monotonic() - sent_at >= self.interval_s:
                self.publish(claims)
                sent, sent_at = claims, time.monotonic()
            self.producer.poll(0)

    def publish(self, claims: list[Claim]) -> None:
        advert = WorkerAdvert(self.worker_id, self.url, claims, int(time.time() * 1000))
        produce_waiting(self.producer, self.topic, ADVERT_CODEC[0].encode(advert), key=self.worker_id.encode())

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)
        produce_waiting(self.producer, self.topic, None, key=self.worker_id.encode())
        self.producer.flush(timeout_s)


class DirectoryReader:
    def __init__(self, consumer: Consumer, topic: str, directory: Directory) -> None:
        self.consumer, self.topic, self.directory = consumer, topic, directory
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="directory-reader", daemon=True)

    def start(self) -> None:
        assign_whole_topic(self.consumer, self.topic, OFFSET_BEGINNING, "kafka.workers_topic")
        self._thread.start()

    def _run(self) -> None:
        decoder = ADVERT_CODEC[1]
        while not self._stop.is_set():
            for msg in self.consumer.consume(100, 0.2):
                key, value = msg.key(), msg.value()
                if msg.error() is not None or key is None:
                    continue
                try:
                    self.directory.apply(key.decode(), None if value is None else decoder.decode(value))
                except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
                    log.warning("workers topic: message at offset %s skipped: %s", msg.offset(), exc)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.consumer.close()
