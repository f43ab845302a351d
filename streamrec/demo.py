"""``streamrec demo``: the whole pipeline in one command on the embedded broker.

    producer thread ──► events ──► serving worker (state, learners, scorer) ──► recommendations
                                      │ training log                   ▲ model-updates
                                      ▼                                │
                               trainer subprocess (torch) ── registry ─┘
    HTTP client thread ──► the API (GET /v1/recommendations/...)

The producer stamps each event with the time it sends it, as a live producer would, so freshness is
measured from the event's own timestamp to the recommendation read back from its topic. The trainer
runs in its own process (the serving process never imports torch), starts once the first
``first_model_after`` events are logged, so that its first model serves while events still flow, and
runs niced on one torch thread, so that it does not take the worker's core. A part that fails ends
the demo: the other parts are stopped and the process exits with one line (:class:`DemoFailed`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from serving.freshness import FreshnessProbe
from stream.config import Config
from stream.events import Event
from stream.training_log import count_logged, log_root
from streamrec.demo_parts import DemoFailed, EventFeed, HttpClient, Part, Trainer, trainer_metrics_port
from streamrec.demo_summary import ModelEffect, Progress, summarise
from streamrec.logs import Throttle
from streamrec.run_record import RunRecorder, write_record
from streamrec.stack import ServingStack

__all__ = ["DemoFailed", "DemoOptions", "run_demo", "trainer_metrics_port"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoOptions:
    """What a demo run does besides its configuration."""

    rate: float | None = 3000.0  # events produced per second (None: as fast as possible)
    first_model_after: int = 20_000  # logged events before the trainer starts (its first run trains on them)
    train_every: int = 100_000  # then retrain after this many newly logged events
    wait_for_model_s: float = 300.0  # once the stream is drained, wait this long for a first model
    http_rate: float = 20.0  # API requests per second
    progress_every_s: float = 5.0  # one progress line this often
    run_record: Path | None = None  # write the run's record here for ``streamrec report``


class TeeListener:
    """Tells each of ``listeners`` about every batch the worker applied, in order."""

    def __init__(self, *listeners: Any) -> None:
        self.listeners = [x for x in listeners if x is not None]

    def batch_applied(self, applied: list[Any]) -> None:
        for listener in self.listeners:
            listener.batch_applied(applied)


class Demo:
    """The demo's parts, started, watched once a second and stopped together."""

    def __init__(self, cfg: Config, events: Iterable[Event], registry_root: Path, options: DemoOptions) -> None:
        Path(cfg.worker.data_dir).mkdir(parents=True, exist_ok=True)
        self.cfg, self.options, self.registry_root = cfg, options, registry_root
        self.stack = ServingStack.build(cfg, registry_root)
        self.recorder = None
        if options.run_record is not None:  # samples the learners after each of the worker's batches
            self.recorder = RunRecorder(self.stack.worker.owned, every=cfg.worker.prequential_every)
            self.stack.worker.listener = TeeListener(self.stack.worker.listener, self.recorder)
        self.halt = threading.Event()  # the parts' own stop; the caller's stop ends the watch
        self.feed = EventFeed(cfg, events, options.rate, applied=lambda: self.progress.applied_offsets())
        self.worker = Part("worker", lambda: self.stack.worker.run(self.halt), self.halt)
        self.trainer = Trainer(cfg, registry_root, options.train_every)
        self.probe = FreshnessProbe(cfg.kafka)
        self.client = None
        if self.stack.api is not None:
            url = f"http://{cfg.serving.host}:{cfg.serving.port}"
            self.client = HttpClient(url, self.feed.users, options.http_rate)
        self.effect = ModelEffect(self.stack)
        self.progress = Progress(self.stack, self.feed, self.effect, self.client)
        self.started = time.perf_counter()
        self.probing = self.stack_started = False

    def start(self, stop: threading.Event) -> None:
        self.stack.start()  # on failure it stops what it started, and raises
        self.stack_started = True
        self.worker.start()
        log.info("waiting for the worker to join its group ...")
        if not self.stack.wait_until_assigned(stop):
            if stop.is_set():  # Ctrl-C while waiting: summarise what ran (nothing)
                return
            self._check()
            raise DemoFailed("the worker was given no partitions within 60 s; is the broker up?")
        self.probe.start()
        self.probing = True
        if self.client is not None:
            self.client.start()
        self.feed.start()
        self.started = time.perf_counter()

    def watch(self, stop: threading.Event) -> None:
        """Until the stream is drained and a model served (or ``stop``): one check a second."""
        progress_line = Throttle(self.options.progress_every_s)
        drained_at: float | None = None
        while not stop.wait(1.0):
            self._check()
            self._start_trainer_when_due()
            version = self.effect.observe(self.feed.sent)
            if version is not None:
                log.info("model version %d is serving (%s)", version, self.progress.counts())
                if self.recorder is not None:
                    self.recorder.model_served(version)
            if progress_line.due():
                log.info("%s", self.progress.line(time.perf_counter() - self.started))
            if self.feed.done.is_set() and self.progress.applied_offsets() >= self.feed.produced:
                drained_at = drained_at or time.monotonic()
                if self.effect.versions or self.feed.produced == 0:
                    return
                if time.monotonic() - drained_at > self.options.wait_for_model_s:
                    raise DemoFailed(
                        f"no model served within {self.options.wait_for_model_s:.0f} s of the stream's end; "
                        f"see {self.trainer.log_file} or raise --wait-for-model"
                    )

    def _check(self) -> None:
        """Raise DemoFailed, naming the part, if the producer, worker, trainer or HTTP client failed."""
        for problem in (
            self.feed.failure(),
            self.worker.failure(),
            self.trainer.failure(),
            self.client.failure() if self.client else None,
        ):
            if problem:
                raise DemoFailed(problem)

    def _start_trainer_when_due(self) -> None:
        if self.trainer.started:
            return
        wanted = self.options.first_model_after
        if self.feed.done.is_set():  # a stream shorter than that: train on all of it
            wanted = min(wanted, self.feed.produced)
        logged = count_logged(log_root(self.cfg.worker.data_dir), self.cfg.kafka.events_topic)
        if logged and logged >= wanted:
            log.info("%d events logged: starting the trainer (log: %s)", logged, self.trainer.log_file)
            self.trainer.start()

    def stop(self) -> None:
        """Every part, in the order that loses nothing: the HTTP client before the worker gives up
        its partitions (which would answer its request 503), the trainer last."""
        if self.client is not None:
            self.client.halt()
        self.effect.keep_weights()  # the blend's weights, read while the worker still owns its partitions
        self.halt.set()
        self.feed.halt()
        if self.worker.ident is not None:
            self.worker.join(60)
        if self.probing:
            self.probe.stop()
        if self.stack_started:
            self.stack.stop()
        self.trainer.stop()

    def summary(self) -> dict[str, Any]:
        took = time.perf_counter() - self.started
        summary = summarise(self.stack, self.feed, self.effect, self.probe, self.client, took)
        if self.recorder is not None and self.options.run_record is not None:
            latencies = {"scoring": [s * 1000.0 for s in self.stack.scorer.recent_seconds]}
            latencies["freshness"] = self.probe.samples_ms
            if self.client is not None:
                latencies["http"] = self.client.latencies_ms
            record = self.recorder.finish(summary, latencies, self.registry_root)
            try:
                summary["run_record"] = str(write_record(record, self.options.run_record))
            except OSError as exc:  # the run's figures are still printed
                summary["run_record_failed"] = (
                    f"cannot write {self.options.run_record} ({exc.strerror}); pass a writable --run-record"
                )
        return summary


def run_demo(
    cfg: Config,
    events: Iterable[Event],
    registry_root: Path,
    stop: threading.Event,
    options: DemoOptions = DemoOptions(),
    start_metrics: Callable[[CollectorRegistry], None] | None = None,
) -> dict[str, Any]:
    """Run the pipeline until the stream is drained and a first model served (or ``stop`` is set);
    returns the summary. A failed part raises :class:`DemoFailed` once every part is stopped."""
    demo = Demo(cfg, events, registry_root, options)
    if start_metrics is not None:
        start_metrics(demo.stack.registry)
    try:
        demo.start(stop)
        demo.watch(stop)
    finally:
        demo.stop()
    return demo.summary()
