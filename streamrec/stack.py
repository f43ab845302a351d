"""The serving process, composed: a stream worker that also scores, publishes and answers HTTP.

    events ──► StreamWorker ──(after each batch)──► RecommendationPublisher ──► `recommendations`
                   │ owned partitions (state + learners, one lock each)
                   ▼
    HTTP API ──► ServingBackend ──► Scorer ◄── ModelWatcher ◄── `model-updates` + registry files
                   │ another worker's user
                   ▼
                Forwarder ──► the owner's HTTP API, found in the Directory ◄── DirectoryReader ◄── `workers`
                                         AdvertPublisher (this worker's URL and partitions) ──► `workers`

One metrics registry holds the worker's and the scorer's metrics; it is served on
``metrics.port`` and on the API's ``/metrics``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry

from serving.adverts import AdvertPublisher, DirectoryReader, advertised_url, new_worker_id
from serving.api import ApiServer, create_app
from serving.backend import EventIngest, ServingBackend
from serving.directory import Directory
from serving.forward import Forwarder
from serving.metrics import ServingMetrics
from serving.model_updates import ModelLoader, ModelWatcher
from serving.publish import RecommendationPublisher
from serving.scorer import Scorer
from stream.config import Config
from stream.events import EventCodec
from stream.kafka.clients import make_consumer, make_producer
from stream.metrics import WorkerMetrics, process_registry
from stream.worker import StreamWorker


@dataclass
class Routing:
    """Any worker answers any user: this worker's advert, everyone's directory, and the forwarder."""

    forwarder: Forwarder
    publisher: AdvertPublisher
    reader: DirectoryReader

    @classmethod
    def build(cls, cfg: Config, worker: StreamWorker, url: str) -> Routing:
        s = cfg.serving
        worker_id = new_worker_id()
        directory = Directory(worker_id, ttl_s=3 * s.advert_interval_s)
        # assign(), not subscribe(): every worker reads every advert; the group id is unused.
        consumer = make_consumer(cfg.kafka, group_id=f"{cfg.kafka.group_id}-workers")
        publisher = AdvertPublisher(
            make_producer(cfg.kafka), cfg.kafka.workers_topic, worker_id, url, worker.owned, s.advert_interval_s
        )
        forwarder = Forwarder(directory, httpx.Client(), s.forward_timeout_s)
        return cls(forwarder, publisher, DirectoryReader(consumer, cfg.kafka.workers_topic, directory))

    def start(self) -> None:
        self.reader.start()
        self.publisher.start()

    def stop(self) -> None:
        self.publisher.stop()  # its tombstone: the others stop forwarding here at once
        self.reader.stop()
        self.forwarder.client.close()


@dataclass
class ServingStack:
    cfg: Config
    registry: CollectorRegistry
    metrics: ServingMetrics
    scorer: Scorer
    loader: ModelLoader
    watcher: ModelWatcher
    publisher: RecommendationPublisher
    worker: StreamWorker
    ingest: EventIngest
    api: ApiServer | None
    routing: Routing | None

    @classmethod
    def build(cls, cfg: Config, registry_root: Path, registry: CollectorRegistry | None = None) -> ServingStack:
        registry = registry or process_registry()
        s = cfg.serving
        metrics = ServingMetrics(registry)
        scorer = Scorer(s, metrics)
        loader = ModelLoader(scorer, s.threads, metrics)
        # assign(), not subscribe(): every scorer reads every update; the group id is unused.
        watcher = ModelWatcher(
            loader,
            make_consumer(cfg.kafka, group_id=f"{cfg.kafka.group_id}-models"),
            cfg.kafka.model_updates_topic,
            registry_root,
            s.registry_poll_s,
        )
        publisher = RecommendationPublisher(
            scorer, make_producer(cfg.kafka), cfg.kafka.recommendations_topic, s.k, list(s.publish_on), metrics
        )
        worker = StreamWorker(cfg, WorkerMetrics(registry), listener=publisher, before_click=scorer.learn_click)
        ingest = EventIngest(make_producer(cfg.kafka), cfg.kafka.events_topic, EventCodec(cfg.events.max_bytes))
        api = routing = None
        if s.port:
            url = advertised_url(s)
            routing = Routing.build(cfg, worker, url) if url else None
            forwarder = routing.forwarder if routing else None
            app = create_app(ServingBackend(worker, scorer, ingest, s.max_k, forwarder), cfg, metrics)
            api = ApiServer(app, s.host, s.port)
        return cls(cfg, registry, metrics, scorer, loader, watcher, publisher, worker, ingest, api, routing)

    def start(self) -> None:
        """Everything but the worker loop, which the caller runs (``worker.run(stop)``)."""
        self.watcher.start()
        self.publisher.start()
        self.ingest.start()
        if self.routing is not None:
            self.routing.start()
        if self.api is not None:
            try:
                self.api.start()
            except BaseException:
                self.api = None
                self.stop()
                raise

    def wait_until_assigned(self, stop: threading.Event, timeout_s: float = 60.0) -> bool:
        """Block until the worker owns partitions (its group join takes ~3 s on Tansu): events
        produced before would wait for the join, which is not what freshness measures."""
        deadline = time.monotonic() + timeout_s
        while not self.worker.owned:
            if stop.wait(0.05) or time.monotonic() > deadline:
                return False
        return True

    def run(self, stop: threading.Event, idle_exit_s: float | None = None) -> None:
        self.start()
        try:
            self.worker.run(stop, idle_exit_s=idle_exit_s)
        finally:
            self.stop()

    def stop(self) -> None:
        if self.routing is not None:
            self.routing.stop()
        if self.api is not None:
            self.api.stop()
        self.ingest.stop()
        self.publisher.stop()
        self.watcher.stop()
