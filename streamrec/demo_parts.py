"""The demo's moving parts besides the serving stack: the event producer, the trainer subprocess,
the HTTP client, and the thread wrapper that keeps a part's failure for the demo to act on."""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

import msgspec

from stream.config import Config
from stream.events import Event
from stream.kafka.clients import make_producer
from stream.produce import produce_events

log = logging.getLogger(__name__)

# Tansu's in-memory engine slows down with the number of record batches in a partition (see
# streamrec.soak.PRODUCER_LINGER_MS). At 3,000 events/s over 4 partitions the clients' 5 ms linger
# makes batches of ~4 events, and the demo's freshness p99 grew to 2.0 s by the stream's end; 50 ms
# measured 0.55 s. The events wait up to this long in the producer, which freshness includes.
EVENTS_LINGER_MS = 50
# The trainer runs only on a core nothing else wants (SCHED_IDLE; where that is refused, at the
# lowest priority): freshness is what the demo shows, training can wait. At nice 10 a retraining
# raised the demo's freshness p99 to 880 ms; at nice 19, 271 ms.
TRAINER_NICENESS = 19
# The first events go alone, and the rest only once the worker has applied them: its first batches pay
# one-time costs (fetch positions, numba's compiled code loaded, first scoring), and events produced
# meanwhile at full rate queued behind them for up to 1.7 s (the first 200 recommendations were late).
# The primer waits instead (1.2 s): 100 events, ~5 recommendations, 0.03 % of the samples.
PRIMER_EVENTS = 100
HTTP_FAILURES_IN_A_ROW = 20  # the API is down, not busy


class DemoFailed(SystemExit):
    """A part of the demo failed. SystemExit prints the one line and exits with code 1 once the
    demo has stopped its other parts, wherever the demo was started from."""

    def __init__(self, message: str) -> None:
        super().__init__(f"streamrec demo: {message}")


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class Part(threading.Thread):
    """Runs ``target`` on a thread and keeps its exception, or notes that it returned before ``halt``."""

    def __init__(self, name: str, target: Callable[[], None], halt: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self._target_fn, self._halt = target, halt
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as exc:
            self.error = exc
            log.debug("the %s failed", self.name, exc_info=True)

    def failure(self) -> str | None:
        if self.error is not None:
            return f"the {self.name} failed: {one_line(self.error)}"
        if self.ident is not None and not self.is_alive() and not self._halt.is_set():
            return f"the {self.name} stopped by itself"
        return None


class EventFeed(threading.Thread):
    """Produces the source's events at ``rate``, each stamped with the time it is sent."""

    def __init__(
        self, cfg: Config, events: Iterable[Event], rate: float | None, applied: Callable[[], int] = lambda: 0
    ) -> None:
        super().__init__(name="producer", daemon=True)
        self.cfg, self.events, self.rate, self.applied = cfg, events, rate, applied
        self.users: list[str] = []  # every 50th event's user: whom the HTTP client asks about
        self.sent = 0  # handed to the producer so far
        self.produced = 0  # delivered, once done
        self.done = threading.Event()
        self.error: BaseException | None = None
        self._halt = threading.Event()

    def _stamped(self) -> Iterator[Event]:
        for n, event in enumerate(self.events):
            if self._halt.is_set():
                return
            if n % 50 == 0:
                self.users.append(event.user_id)
            self.sent = n + 1
            yield msgspec.structs.replace(event, ts=int(time.time() * 1000))

    def run(self) -> None:
        try:
            producer = make_producer(self.cfg.kafka, **{"linger.ms": EVENTS_LINGER_MS})
            events, topic = self._stamped(), self.cfg.kafka.events_topic
            self.produced = produce_events(producer, topic, itertools.islice(events, PRIMER_EVENTS))
            self._await_applied(self.produced)
            self.produced += produce_events(producer, topic, events, rate=self.rate)
            log.info("the producer has sent all %d events", self.produced)
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()

    def _await_applied(self, n: int, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.applied() < n and time.monotonic() < deadline and not self._halt.wait(0.05):
            pass

    def halt(self) -> None:
        self._halt.set()

    def failure(self) -> str | None:
        return f"the producer failed: {one_line(self.error)}" if self.error is not None else None


class HttpClient(threading.Thread):
    """Asks the API for recommendations of users seen so far, ``rate`` requests per second."""

    def __init__(self, base_url: str, users: list[str], rate: float) -> None:
        super().__init__(name="http-client", daemon=True)
        self.base_url, self.users, self.rate = base_url, users, rate
        self._halt = threading.Event()
        self.latencies_ms: list[float] = []
        self.failures: list[str] = []
        self.failed_in_a_row = 0

    def halt(self) -> None:
        """Stop asking, and wait for the request in flight: the demo stops its client before the
        worker gives up its partitions, which would answer that request 503."""
        self._halt.set()
        if self.ident is not None:
            self.join(10)

    def run(self) -> None:
        rng = random.Random(0)
        while not self._halt.wait(1.0 / self.rate):
            if self.users:
                self._ask(self.users[rng.randrange(len(self.users))])

    def _ask(self, user: str) -> None:
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(f"{self.base_url}/v1/recommendations/{user}?k=10", timeout=5) as r:
                json.loads(r.read())  # a whole, well-formed answer
            self.latencies_ms.append((time.perf_counter() - started) * 1000.0)
            self.failed_in_a_row = 0
        except (urllib.error.URLError, OSError, ValueError) as exc:
            self.failures.append(f"{user}: {exc}")
            self.failed_in_a_row += 1

    def failure(self) -> str | None:
        if self.failed_in_a_row >= HTTP_FAILURES_IN_A_ROW:
            return f"the API failed {self.failed_in_a_row} requests in a row (last: {self.failures[-1]})"
        return None


def trainer_metrics_port(cfg: Config) -> int:
    """The trainer subprocess serves its metrics on the port after the demo's (0: metrics off)."""
    return cfg.metrics.port + 1 if cfg.metrics.port else 0


def trainer_command(cfg: Config, registry_root: Path, every_events: int) -> list[str]:
    """``streamrec train --from-log``, periodic, on the demo's broker, data and registry."""
    settings = {
        "kafka.bootstrap_servers": cfg.kafka.bootstrap_servers,
        "worker.data_dir": cfg.worker.data_dir,
        "kafka.events_topic": cfg.kafka.events_topic,
        "kafka.model_updates_topic": cfg.kafka.model_updates_topic,
        "train.every_events": every_events,
        "train.every_s": 0,
        "metrics.host": cfg.metrics.host,
        "metrics.port": trainer_metrics_port(cfg),
        # Demo-sized training: fewer epochs and ranked clicks than a production run.
        "train.epochs": 3,
        "train.test_clicks": 1000,
        "train.validation_clicks": 500,
        # One torch thread: the other core is the worker's.
        "train.threads": 1,
    }
    argv = [sys.executable, "-m", "streamrec.cli", "train", "--from-log", "--registry-root", str(registry_root)]
    for key, value in settings.items():
        argv += ["--set", f"{key}={json.dumps(value)}"]
    return [*argv, "--log-level", "INFO", "--json"]  # trainer.log says when and why it trained


class Trainer:
    """The periodic trainer as a child process, its output in ``trainer.log`` of the data dir."""

    def __init__(self, cfg: Config, registry_root: Path, every_events: int) -> None:
        self.argv = trainer_command(cfg, registry_root, every_events)
        self.log_file = Path(cfg.worker.data_dir) / "trainer.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None

    @property
    def started(self) -> bool:
        return self.proc is not None

    def start(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._out = self.log_file.open("ab")
        self.proc = subprocess.Popen(self.argv, stdout=self._out, stderr=subprocess.STDOUT)
        self._yield_cores(self.proc.pid)

    @staticmethod
    def _yield_cores(pid: int) -> None:
        """Set before the child has started a thread (Linux scheduling is per thread, inherited by
        the threads a thread starts): the interpreter is still starting up."""
        try:
            os.setpriority(os.PRIO_PROCESS, pid, min(os.getpriority(os.PRIO_PROCESS, 0) + TRAINER_NICENESS, 19))
            if hasattr(os, "SCHED_IDLE"):
                os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
        except OSError as exc:  # it exited already (failure() says why), or the policy is refused
            log.debug("could not lower the trainer's priority: %s", exc)

    def failure(self) -> str | None:
        """It runs until stopped, so any exit is a failure; named with its log's last line."""
        if self.proc is None or self.proc.poll() is None:
            return None
        said = self.log_file.read_text(errors="replace").strip().splitlines() if self.log_file.exists() else []
        last = f": {said[-1].strip()}" if said else ""
        return f"the trainer exited with code {self.proc.returncode}{last} (log: {self.log_file})"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # it finishes a training in progress first: a few seconds, then kill
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._out is not None:
            self._out.close()
