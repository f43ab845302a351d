"""What the commands share at run time: Kafka, signals, metrics, output and the user-facing error."""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
import msgspec

from stream.config import Config

log = logging.getLogger("streamrec")


class UsageError(Exception):
    """A bad argument or an unusable environment: printed as one line, exit code 2."""


class CommandError(Exception):
    """A user-facing failure, already prefixed with the command it ended."""


def _user_errors() -> tuple[type[Exception], ...]:
    from stream.config import ConfigError
    from stream.sources import SourceError
    from stream.sources.logfile import LogFormatError
    from stream.sources.movielens import DatasetUnavailable

    return UsageError, ConfigError, SourceError, LogFormatError, DatasetUnavailable


class Group(click.Group):
    """A command group whose commands' user-facing errors end them with one line naming the command."""

    group_class = type  # subgroups are Groups too

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _user_errors() as exc:
            raise CommandError(f"{ctx.command_path} {ctx.invoked_subcommand}: {exc}") from None


def with_section(cfg: Config, section: str, **changes: Any) -> Config:
    """``cfg`` with fields of one section replaced (Config is immutable in practice)."""
    return msgspec.structs.replace(cfg, **{section: msgspec.structs.replace(getattr(cfg, section), **changes)})


@contextmanager
def kafka(cfg: Config) -> Iterator[Config]:
    """Use the configured cluster, or start the embedded Tansu broker when none is configured."""
    from stream.kafka.broker import EmbeddedBroker
    from stream.kafka.clients import ensure_topics

    if cfg.kafka.bootstrap_servers:
        ensure_topics(cfg.kafka)
        yield cfg
        return
    with EmbeddedBroker() as broker:
        log.info("embedded Tansu broker at %s", broker.bootstrap_servers)
        cfg = with_section(cfg, "kafka", bootstrap_servers=broker.bootstrap_servers)
        ensure_topics(cfg.kafka)
        yield cfg


def require_broker(cfg: Config, command: str) -> None:
    """A command that joins a cluster fails at once, before it starts anything, when none is named."""
    if not cfg.kafka.bootstrap_servers:
        raise UsageError(
            f"{command} needs a broker: pass --bootstrap-servers HOST:PORT (start one with `streamrec broker`)"
        )


def external_kafka(cfg: Config, command: str, wait: threading.Event | None = None) -> Config | None:
    """``cfg`` once its cluster answers (topics created if missing), for a command that joins one.

    A one-shot command fails fast (one line) when Kafka cannot be reached. A long-running one passes
    ``wait`` (its stop event): it logs and retries every 2 s until Kafka answers, or returns None
    once ``wait`` is set."""
    from confluent_kafka import KafkaException

    from stream.kafka.clients import ensure_topics

    require_broker(cfg, command)
    while True:
        try:
            ensure_topics(cfg.kafka)
            return cfg
        except KafkaException as exc:
            reason = exc.args[0].str()
            if wait is None:
                raise UsageError(
                    f"cannot reach Kafka at {cfg.kafka.bootstrap_servers} ({reason}); "
                    "check --bootstrap-servers and that the broker is up"
                ) from None
            log.warning("cannot reach Kafka at %s (%s); retrying in 2 s", cfg.kafka.bootstrap_servers, reason)
        if wait.wait(2.0):
            return None


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM: long-running commands stop cleanly on either."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def emit(obj: Any, as_json: bool) -> None:
    """A command's result on stdout: one JSON line with --json, indented JSON otherwise."""
    print(json.dumps(obj, indent=None if as_json else 2))


def start_metrics(cfg: Config, registry: Any) -> None:
    """Serve ``registry`` on metrics.host:metrics.port (0: not at all)."""
    if not cfg.metrics.port:
        return
    from prometheus_client import start_http_server

    try:
        start_http_server(cfg.metrics.port, cfg.metrics.host, registry)
    except OSError as exc:
        raise UsageError(
            f"cannot serve metrics on {cfg.metrics.host}:{cfg.metrics.port} ({exc.strerror}); "
            "pass --metrics-port N, or 0 to disable"
        ) from None
    log.info("metrics on http://%s:%d/metrics", cfg.metrics.host, cfg.metrics.port)
