"""The long-running processes: the embedded broker, the producer, a stream worker, a serving worker."""

from __future__ import annotations

import logging
import time

import click

from streamrec.cli.options import Settings, SourceSpec, config_options, source_options
from streamrec.cli.plumbing import (
    UsageError,
    external_kafka,
    require_broker,
    start_metrics,
    stop_on_signals,
)
from streamrec.logs import Throttle

log = logging.getLogger(__name__)
IDLE_EXIT = click.option(
    "--idle-exit", type=float, metavar="SECONDS", help="Exit cleanly after this many seconds without events."
)


@click.command()
@click.option("--port", type=int, default=9092, show_default=True, help="Port the broker listens on.")
@click.option(
    "--storage", default="memory://tansu/", show_default=True, help="memory://tansu/ or postgres://user:pw@host/db."
)
@config_options()
def broker(settings: Settings, port: int, storage: str) -> int:
    """Run the embedded Tansu broker."""
    from stream.kafka.broker import EmbeddedBroker

    stop = stop_on_signals()
    with EmbeddedBroker(port=port, storage=storage) as running:
        print(f"tansu broker at {running.bootstrap_servers} (storage {storage}); Ctrl-C stops it", flush=True)
        while not stop.wait(0.5):
            if running.proc is not None and running.proc.poll() is not None:
                raise UsageError(f"the broker exited with code {running.proc.returncode}")
    return 0


@click.command()
@config_options("bootstrap_servers", "partitions")
@source_options()
@click.option("--rate", type=float, help="Events per second (default: as fast as possible).")
@click.option("--limit", type=int, help="Stop after this many events.")
def produce(settings: Settings, source: SourceSpec, rate: float | None, limit: int | None) -> int:
    """Replay a source into the events topic."""
    from stream.kafka.clients import make_producer
    from stream.produce import produce_events

    cfg = external_kafka(settings.load(), "produce")
    assert cfg is not None
    throttle, topic = Throttle(), cfg.kafka.events_topic

    def progress(n: int) -> None:
        if throttle.due():
            log.info("produced %s events", f"{n:,}")

    started = time.perf_counter()
    sent = produce_events(
        make_producer(cfg.kafka),
        topic,
        source.open(),
        rate=rate,
        limit=limit,
        progress=progress,
    )
    took = time.perf_counter() - started
    print(f"produced {sent:,} events to {topic} in {took:.1f}s ({sent / took:,.0f}/s)")
    return 0


@click.command()
@config_options("bootstrap_servers", "partitions", "data_dir", "metrics_port")
@IDLE_EXIT
def stream(settings: Settings, idle_exit: float | None) -> int:
    """Run a stream worker in the consumer group."""
    from stream.metrics import WorkerMetrics, process_registry
    from stream.worker import StreamWorker

    require_broker(settings.load(), "stream")
    registry = process_registry()
    metrics = WorkerMetrics(registry)
    start_metrics(settings.load(), registry)  # up first: operators see a worker waiting for Kafka
    stop = stop_on_signals()
    cfg = external_kafka(settings.load(), "stream", wait=stop)  # a worker outlives a broker not up yet
    if cfg is not None:  # None: stopped while waiting
        StreamWorker(cfg, metrics).run(stop, idle_exit_s=idle_exit)
    return 0


@click.command()
@config_options(
    "bootstrap_servers",
    "partitions",
    "data_dir",
    "registry_root",
    "port",
    "metrics_port",
    port="HTTP API port; 0 disables the API. Sets serving.port.",
)
@IDLE_EXIT
def serve(settings: Settings, idle_exit: float | None) -> int:
    """A stream worker that also scores, publishes recommendations and serves HTTP."""
    from pathlib import Path

    from serving.api import ApiUnavailable
    from streamrec.stack import ServingStack

    stop = stop_on_signals()
    cfg = external_kafka(settings.load(), "serve", wait=stop)  # like `stream`: outlive a broker not up yet
    if cfg is None:
        return 0
    stack = ServingStack.build(cfg, Path(cfg.registry.root))
    start_metrics(cfg, stack.registry)
    try:
        stack.run(stop, idle_exit_s=idle_exit)
    except ApiUnavailable as exc:
        raise UsageError(f"{exc}; pick a free port with --port or serving.port") from None
    return 0
