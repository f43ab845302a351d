"""Replay a source of events into the events topic, as fast as possible or at a fixed rate."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from confluent_kafka import Producer

from stream.events import Event, EventCodec
from stream.kafka.clients import produce_waiting


def produce_events(
    producer: Producer,
    topic: str,
    events: Iterable[Event],
    rate: float | None = None,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Produce events keyed by user id; returns how many. ``rate`` is events/s (None: unthrottled)."""
    sent = 0
    started = time.perf_counter()
    for event in events:
        if limit is not None and sent >= limit:
            break
        produce_waiting(producer, topic, EventCodec.encode(event), key=event.user_id.encode())
        sent += 1
        if sent % 10_000 == 0:
            producer.poll(0)
            if progress:
                progress(sent)
        if rate:
            ahead = sent / rate - (time.perf_counter() - started)
            if ahead > 0.002:
                time.sleep(ahead)
    remaining = producer.flush(30)
    if remaining:
        raise RuntimeError(f"{remaining} events were not delivered within 30 s")
    return sent
