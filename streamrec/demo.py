"""``streamrec demo``: the whole pipeline in one command on the embedded broker.

    producer thread ──► events ──► serving worker (state, learners, scorer) ──► recommendations
                                      │ training log                   ▲ model-updates
                                      ▼                                │
                               trainer subprocess (torch) ── registry ─┘
    HTTP client thread ──► the API (GET /v1/recommendations/...)

The producer stamps each event with the time it sends it, as a live producer would, so freshness
is measured as docs/explanation/definitions.md says. The trainer runs in its own process: the serving process never
imports torch, and training does not share its interpreter lock.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from serving.freshness import FreshnessProbe
from stream.config import Config
from stream.events import EVENT_TYPES, Event
from stream.kafka.clients import make_producer
from stream.processor import LEARNERS
from stream.produce import produce_events
from streamrec.run_record import RunRecorder, write_record
from streamrec.stack import ServingStack

Log = Callable[[str], None]


def _ms(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


class HttpClient(threading.Thread):
    """Asks the API for recommendations of users seen so far, ``rate`` requests per second."""

    def __init__(self, base_url: str, users: list[str], rate: float) -> None:
        super().__init__(name="http-client", daemon=True)
        self.base_url, self.users, self.rate = base_url, users, rate
        self._halt = threading.Event()
        self.latencies_ms: list[float] = []
        self.failures: list[str] = []

    def halt(self) -> None:
        """Stop asking, and wait for the request in flight: the demo stops its client before the
        worker gives up its partitions, which would answer that request 503."""
        self._halt.set()
        self.join(10)

    def run(self) -> None:
        rng = random.Random(0)
        while not self._halt.wait(1.0 / self.rate):
            if not self.users:
                continue
            user = self.users[rng.randrange(len(self.users))]
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(f"{self.base_url}/v1/recommendations/{user}?k=10", timeout=5) as r:
                    json.loads(r.read())  # a whole, well-formed answer
                self.latencies_ms.append((time.perf_counter() - started) * 1000.0)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                self.failures.append(f"{user}: {exc}")


class TeeListener:
    """Tells each of ``listeners`` about every batch the worker applied, in order."""

    def __init__(self, *listeners: Any) -> None:
        self.listeners = [x for x in listeners if x is not None]

    def batch_applied(self, applied: list) -> None:
        for listener in self.listeners:
            listener.batch_applied(applied)


def trainer_metrics_port(cfg: Config) -> int:
    """The trainer subprocess serves its metrics on the port after the demo's (0: metrics off)."""
    return cfg.metrics.port + 1 if cfg.metrics.port else 0


def _trainer(cfg: Config, registry_root: Path, every_events: int, log_file: Path) -> subprocess.Popen:
    argv = [
        sys.executable,
        "-m",
        "streamrec.cli",
        "train",
        "--from-log",
        "--registry-root",
        str(registry_root),
        "--set",
        f"kafka.bootstrap_servers={json.dumps(cfg.kafka.bootstrap_servers)}",
        "--set",
        f"worker.data_dir={json.dumps(cfg.worker.data_dir)}",
        "--set",
        f"kafka.events_topic={json.dumps(cfg.kafka.events_topic)}",
        "--set",
        f"kafka.model_updates_topic={json.dumps(cfg.kafka.model_updates_topic)}",
        "--set",
        f"train.every_events={every_events}",
        "--set",
        "train.every_s=0",
        "--set",
        f"metrics.host={json.dumps(cfg.metrics.host)}",
        "--set",
        f"metrics.port={trainer_metrics_port(cfg)}",
        # Demo-sized training: fewer epochs and ranked clicks than a production run.
        "--set",
        "train.epochs=3",
        "--set",
        "train.test_clicks=1000",
        "--set",
        "train.validation_clicks=500",
        "--json",
    ]
    return subprocess.Popen(argv, stdout=log_file.open("ab"), stderr=subprocess.STDOUT)


def run_demo(
    cfg: Config,
    events: Iterable[Event],
    registry_root: Path,
    rate: float | None,
    stop: threading.Event,
    train_every: int = 100_000,
    wait_for_model_s: float = 300.0,
    http_rate: float = 20.0,
    log: Log = print,
    start_metrics: Callable[[Any], None] | None = None,
    run_record: Path | None = None,
) -> dict[str, Any]:
    """Run the pipeline until the stream is drained (and a first model served); returns the summary.
    With ``run_record``, also write the run's record there for ``streamrec report``."""
    stack = ServingStack.build(cfg, registry_root)
    recorder = None
    if run_record is not None:  # samples the learners after each of the worker's batches
        recorder = RunRecorder(stack.worker.owned, every=cfg.worker.prequential_every)
        stack.worker.listener = TeeListener(stack.worker.listener, recorder)
    if start_metrics is not None:
        start_metrics(stack.registry)
    stack.start()
    worker_thread = threading.Thread(target=stack.worker.run, args=(stop,), name="worker")
    worker_thread.start()
    trainer = _trainer(cfg, registry_root, train_every, Path(cfg.worker.data_dir) / "trainer.log")
    log("waiting for the worker to join its group ...")
    stack.wait_until_assigned(stop)
    probe = FreshnessProbe(cfg.kafka)
    probe.start()
    seen_users: list[str] = []
    client = None
    if stack.api is not None:
        client = HttpClient(f"http://{cfg.serving.host}:{cfg.serving.port}", seen_users, http_rate)
        client.start()
    produced = [0]
    producer_done = threading.Event()
    failures: list[BaseException] = []

    def stamped() -> Iterable[Event]:
        for n, event in enumerate(events):
            if n % 50 == 0:
                seen_users.append(event.user_id)
            yield msgspec.structs.replace(event, ts=int(time.time() * 1000))

    def produce() -> None:
        try:
            produced[0] = produce_events(
                make_producer(cfg.kafka),
                cfg.kafka.events_topic,
                stamped(),
                rate=rate,
                progress=lambda n: produced.__setitem__(0, n),
            )
        except BaseException as exc:
            failures.append(exc)
        finally:
            producer_done.set()

    threading.Thread(target=produce, name="producer", daemon=True).start()
    started = time.perf_counter()
    versions: list[int] = []
    drained_at = None
    value = stack.registry.get_sample_value

    def applied() -> int:
        return int(sum(value("streamrec_events_processed_total", {"type": t}) or 0 for t in EVENT_TYPES))

    def prequential() -> dict[str, dict[str, float]]:
        return {
            name: {
                "recall@10": round(value("streamrec_prequential_recall_ratio", {"learner": name}) or 0, 4),
                "ndcg@10": round(value("streamrec_prequential_ndcg_ratio", {"learner": name}) or 0, 4),
            }
            for name in LEARNERS
        }

    try:
        while not stop.wait(1.0):
            version = stack.scorer.version
            if version is not None and (not versions or versions[-1] != version):
                versions.append(version)
                if recorder is not None:
                    recorder.model_served(version)
                print(file=sys.stderr)
                log(f"model version {version} is serving")
            done = sum(o.next_offset for o in list(stack.worker.owned.values()))
            elapsed = time.perf_counter() - started
            print(
                f"\rproduced {produced[0]:,}  processed {done:,} ({done / elapsed:,.0f}/s)  "
                f"published {int(value('streamrec_recommendations_published_total') or 0):,}  "
                f"model {version or '-'}  http {len(client.latencies_ms) if client else 0:,}  "
                f"item_knn recall@10 {prequential()['item_knn']['recall@10']:.3f}",
                end="",
                file=sys.stderr,
                flush=True,
            )
            if failures or (trainer.poll() is not None and not versions):
                break  # the producer or the trainer failed: summarise what ran
            if producer_done.is_set() and done >= produced[0]:
                drained_at = drained_at or time.monotonic()
                no_training_due = produced[0] < train_every  # the trainer will never fire
                if versions or no_training_due or time.monotonic() - drained_at > wait_for_model_s:
                    break
    finally:
        print(file=sys.stderr)
        if client is not None:
            client.halt()
        stop.set()
        worker_thread.join(60)
        probe.stop()
        stack.stop()
        trainer.terminate()
        try:
            trainer.wait(30)
        except subprocess.TimeoutExpired:
            trainer.kill()
    took = time.perf_counter() - started
    scoring_ms = [s * 1000.0 for s in stack.scorer.recent_seconds]
    events_applied = applied()
    summary = {
        "events_produced": produced[0],
        "events_applied": events_applied,
        "seconds": round(took, 1),
        "events_per_s": round(events_applied / took),
        "dead_lettered": int(
            sum(
                s.value
                for m in stack.worker.metrics.dead_lettered.collect()
                for s in m.samples
                if s.name.endswith("_total")
            )
        ),
        "prequential": prequential(),
        "model_versions_served": versions,
        "recommendations_published": int(value("streamrec_recommendations_published_total") or 0),
        "blend_updates": int(value("streamrec_blend_updates_total") or 0),  # clicks the serving blend learned from
        "scoring_ms": {"p50": _ms(scoring_ms, 50), "p99": _ms(scoring_ms, 99), "n": len(scoring_ms)},
        "freshness_ms": {
            "p50": _ms(probe.samples_ms, 50),
            "p99": _ms(probe.samples_ms, 99),
            "n": len(probe.samples_ms),
        },
    }
    if client is not None:
        summary["http_ms"] = {
            "p50": _ms(client.latencies_ms, 50),
            "p99": _ms(client.latencies_ms, 99),
            "n": len(client.latencies_ms),
            "failed": len(client.failures),
            "first_failures": client.failures[:3],
        }
    if failures:
        summary["producer_failed"] = str(failures[0])
    if trainer.returncode not in (0, -15, None) and not versions:
        tail = (Path(cfg.worker.data_dir) / "trainer.log").read_text(errors="replace").splitlines()[-5:]
        summary["trainer_failed"] = f"exit code {trainer.returncode}: " + " | ".join(tail)
    if recorder is not None:
        latencies = {"scoring": scoring_ms, "freshness": probe.samples_ms}
        if client is not None:
            latencies["http"] = client.latencies_ms
        try:
            summary["run_record"] = str(write_record(recorder.finish(summary, latencies, registry_root), run_record))
        except OSError as exc:  # the run's figures are still printed
            summary["run_record_failed"] = f"cannot write {run_record} ({exc.strerror}); pass a writable --run-record"
    return summary
