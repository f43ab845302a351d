"""``streamrec bench stream``: worker throughput against the raw consume + decode rate, one run.

Both rates are events per second of wall time in this one process, measured after a warm-up
(the first ``warmup`` share of the events), on the same topic of the same broker.
``events_per_s`` is the whole worker path (decode + validate + de-duplicate + state + every learner,
prequential scoring included, checkpoints included); ``raw_per_s`` only consumes and decodes.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import threading
import time
from typing import Any

import msgspec
from confluent_kafka import Message, TopicPartition
from prometheus_client import CollectorRegistry

from stream.config import Config
from stream.events import EventCodec
from stream.kafka.clients import make_consumer, make_producer
from stream.metrics import WorkerMetrics
from stream.produce import produce_events
from stream.sources.synthetic import SyntheticConfig, synthetic_events
from stream.worker import StreamWorker

log = logging.getLogger(__name__)


def _rate(marks: list[tuple[int, float]], total: int, warmup: float) -> float:
    """events/s between the first mark past the warm-up and the last mark."""
    start = next((m for m in marks if m[0] >= warmup * total), marks[0])
    end = marks[-1]
    return (end[0] - start[0]) / (end[1] - start[1]) if end[1] > start[1] else float("nan")


def raw_rate(cfg: Config, total: int, warmup: float) -> float:
    codec = EventCodec(cfg.events.max_bytes)
    consumer = make_consumer(cfg.kafka, group_id=f"bench-raw-{time.time_ns()}")
    consumer.assign([TopicPartition(cfg.kafka.events_topic, p, 0) for p in range(cfg.kafka.partitions)])
    seen, marks = 0, []
    try:
        while seen < total:
            batch = consumer.consume(cfg.worker.batch_size, 1.0)
            for msg in batch:
                if msg.error() is None:
                    codec.decode(msg.value())
                    seen += 1
            marks.append((seen, time.perf_counter()))
    finally:
        consumer.close()
    return _rate(marks, total, warmup)


def worker_rate(cfg: Config, total: int, warmup: float, run: int) -> float:
    with tempfile.TemporaryDirectory(prefix="streamrec-bench-") as data:
        kafka = msgspec.structs.replace(cfg.kafka, group_id=f"bench-worker-{run}-{time.time_ns()}")
        wcfg = msgspec.structs.replace(cfg, kafka=kafka, worker=msgspec.structs.replace(cfg.worker, data_dir=data))
        worker = StreamWorker(wcfg, WorkerMetrics(CollectorRegistry()))
        marks: list[tuple[int, float]] = []
        stop = threading.Event()
        original = worker.process_batch

        def timed(messages: list[Message]) -> None:  # wraps the real batch path; records progress after each batch
            original(messages)
            done = sum(o.next_offset for o in worker.owned.values())
            marks.append((done, time.perf_counter()))
            if done >= total:
                stop.set()

        worker.process_batch = timed  # type: ignore[method-assign]
        worker.run(stop)
    return _rate(marks, total, warmup)


def bench_stream(
    cfg: Config,
    events: int = 200_000,
    runs: int = 5,
    warmup: float = 0.2,
    synthetic: SyntheticConfig | None = None,
) -> dict[str, Any]:
    synthetic = synthetic or SyntheticConfig(n_sessions=events // 10)
    producer = make_producer(cfg.kafka)
    log.info("producing %d synthetic events ...", events)
    total = produce_events(producer, cfg.kafka.events_topic, synthetic_events(synthetic), limit=events)
    worker_runs, raw_runs = [], []
    for run in range(runs):
        raw_runs.append(raw_rate(cfg, total, warmup))
        worker_runs.append(worker_rate(cfg, total, warmup, run))
        log.info("run %d/%d: worker %.0f events/s, raw %.0f events/s", run + 1, runs, worker_runs[-1], raw_runs[-1])
    events_per_s = statistics.median(worker_runs)
    raw_per_s = statistics.median(raw_runs)
    return {
        "events_per_s": round(events_per_s),
        "raw_per_s": round(raw_per_s),
        "ratio": round(events_per_s / raw_per_s, 3),
        "events": total,
        "runs": runs,
        "worker_runs": [round(r) for r in worker_runs],
        "raw_runs": [round(r) for r in raw_runs],
        "partitions": cfg.kafka.partitions,
        "prequential_every": cfg.worker.prequential_every,
    }
