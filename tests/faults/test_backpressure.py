"""A slow consumer under a fast producer: lag grows and is reported, memory stays bounded, and once
the worker catches up every event has been applied exactly once.

The worker is slowed the way a CPU quota slows a container: the test stops it (SIGSTOP) for 0.45 s
and lets it run (SIGCONT) for 0.05 s, over and over -- a tenth of a CPU -- while the producer
writes a backlog several times what the consumer may prefetch. Then the throttle is lifted and the
same worker drains the backlog. (Slowing it with full-catalogue scoring on every click instead,
worker.prequential_every=1, measured ~10,000 events/s here: not slower than the producer for long
enough, and a worker that slow all along could not drain the backlog inside the time budget.)

Why memory is bounded, and the bound asserted. The worker holds, besides its state:
* librdkafka's prefetch queue, which stops fetching past ``queued.min.messages`` (100,000
  messages) or ``queued.max.messages.kbytes`` (64 MiB), whichever comes first, overshot by at most
  one fetch per partition (``fetch.message.max.bytes``, 1 MiB each). For the high-level consumer
  both limits apply to its one queue, whatever the number of partitions. Measured with ~230-byte
  values on a bare consumer: the queue stopped at ~122,000 messages, 27 MB of values and 72 MB of
  resident memory (~590 bytes a message: value, key, librdkafka's per-message op, fetch buffers).
  Messages passing through the full queue then push resident memory further (the allocator does
  not hand freed fetch buffers back): it levelled off at ~150 MB after ~700,000 messages;
* one consumed batch, at most ``worker.batch_size`` (5,000) messages;
* the state of the events it applied meanwhile (de-duplication ids, training-log rows until the
  next checkpoint, learners).
So the peak is allowed: resident memory after a warm-up + twice what the queue may hold (64 MiB +
100,000 x 400 bytes of per-message overhead + 4 x 1 MiB of overshoot, ~106 MiB, doubled for the
allocator) + 1 KB per event applied while throttled. Buffering the whole backlog instead would cost
~590 bytes a message: the backlog is sized so that this is well above the bound.

Lag is the worker's gauge, high watermark minus next offset, with high watermarks from librdkafka's
statistics, which learn them from fetch responses. While the prefetch queue is full librdkafka does
not fetch, so the gauge can trail the backlog (measured: 200,000-290,000 shown while ~455,000 were
waiting) until the worker has consumed enough for the next fetch; the test waits for that.
"""

from __future__ import annotations

import itertools
import signal
import threading
import time

import msgspec
import psutil

from stream.kafka.clients import make_producer
from stream.produce import produce_events
from stream.sources.synthetic import SyntheticConfig, synthetic_events
from streamrec.soak import applied, handled, scrape, total
from tests.kafka_fixtures import final_states

BACKLOG = 800_000
RUN_S, STOPPED_S = 0.05, 0.45  # a tenth of a CPU while throttled
HOLD_S = 10.0  # throttled this long after the backlog is in Kafka
# Deadlines, not waits (a fast machine meets each long before): the producer writing the backlog
# (~5 s here), then the lag gauge showing it (~10 s here, longer on a slower machine: it moves only
# when the throttled worker has consumed enough for its next fetch).
PRODUCE_DEADLINE_S = 300.0
LAG_DEADLINE_S = 180.0

MIB = 2**20
QUEUED_MAX_KBYTES = 65_536  # librdkafka's defaults, which stream/kafka/clients.py leaves alone
QUEUED_MIN_MESSAGES = 100_000
FETCH_MESSAGE_MAX_BYTES = 1 * MIB
PER_MESSAGE_OVERHEAD = 400  # bytes beside the value: librdkafka op, key, buffers (measured ~360)
ALLOCATOR_FACTOR = 2  # measured: 72 MB with the queue full, levelling off at ~150 MB as messages pass
PER_APPLIED_EVENT = 1024  # state of one applied event, generously (de-dup id, log row, learners)
BYTES_PER_BUFFERED = 590  # measured resident bytes per message held in the queue


def _events(base: list, lap: str) -> list:
    """``base`` again under fresh event ids, so de-duplication keeps every copy."""
    return [msgspec.structs.replace(e, event_id=f"{e.event_id}.{lap}") for e in base]


def _flood(base: list, n: int):
    """``n`` events: laps of ``base``, each under fresh ids (generated as they are sent)."""
    laps = (msgspec.structs.replace(e, event_id=f"{e.event_id}.{lap}") for lap in itertools.count() for e in base)
    return itertools.islice(laps, n)


class Throttle(threading.Thread):
    """Stops and continues a process so it runs RUN_S out of every RUN_S + STOPPED_S seconds."""

    def __init__(self, pid: int) -> None:
        super().__init__(name="throttle", daemon=True)
        self.ps = psutil.Process(pid)
        self.lifted = threading.Event()

    def run(self) -> None:
        try:
            while not self.lifted.is_set():
                self.ps.suspend()
                self.lifted.wait(STOPPED_S)
                self.ps.resume()
                time.sleep(RUN_S)
        finally:
            self.ps.resume()

    def lift(self) -> None:
        self.lifted.set()
        self.join(5)


def test_a_slow_consumer_reports_lag_keeps_memory_bounded_and_loses_nothing(kafka_cfg, workers, fault_row):
    cfg = kafka_cfg
    base = list(synthetic_events(SyntheticConfig(n_users=2000, n_items=1000, n_sessions=3000, seed=11)))
    worker = workers(cfg)
    ps = psutil.Process(worker.proc.pid)
    worker.wait_for(
        lambda: (worker.metric("streamrec_assigned_partitions") or 0) == cfg.kafka.partitions,
        timeout_s=120,
        what="the worker to own every partition",
    )

    # Warm-up at full speed: imports, JIT compilation and the first state are in the baseline.
    warm = _events(base, "w")
    produce_events(make_producer(cfg.kafka), cfg.kafka.events_topic, warm)
    worker.wait_for(lambda: applied(scrape(worker.port)) >= len(warm), timeout_s=120, what="the warm-up events")
    time.sleep(1.0)
    rss_warm = ps.memory_info().rss
    applied_warm = applied(scrape(worker.port))

    throttle = Throttle(worker.proc.pid)
    throttle.start()
    produced = threading.Event()

    def produce() -> None:
        produce_events(make_producer(cfg.kafka), cfg.kafka.events_topic, _flood(base, BACKLOG))
        produced.set()

    producer = threading.Thread(target=produce, daemon=True)
    samples: list[tuple[float, int, int, int]] = []  # (t, lag, applied, rss)
    started = time.monotonic()
    producer.start()
    try:
        # Sample while the backlog builds, then at least HOLD_S more, until the gauge shows the backlog
        # (its high watermarks come with fetch responses, and a full prefetch queue pauses fetching).
        produced_at = None
        while True:
            # Answered within a stopped spell or two; a slow machine may miss one. An unanswered
            # scrape is no sample (it would read as lag 0 and nothing applied), not a failure.
            metrics = scrape(worker.port, timeout_s=15.0)
            assert worker.proc.poll() is None, f"the worker exited: {worker.stderr_tail()}"
            if metrics is not None:
                samples.append(
                    (
                        time.monotonic() - started,
                        int(total(metrics, "streamrec_consumer_lag_messages")),
                        applied(metrics),
                        ps.memory_info().rss,
                    )
                )
            if produced_at is None and produced.is_set():
                produced_at = time.monotonic()
            if (
                samples
                and produced_at is not None
                and time.monotonic() - produced_at >= HOLD_S
                and (samples[-1][1] >= BACKLOG // 2 or time.monotonic() - produced_at >= LAG_DEADLINE_S)
            ):
                break
            assert produced_at is not None or time.monotonic() - started < PRODUCE_DEADLINE_S, (
                f"the producer did not finish within {PRODUCE_DEADLINE_S:.0f} s"
            )
            time.sleep(0.5)
    finally:
        throttle.lift()
    producer.join(10)

    # Lag grows and is reported: the gauge rises with the backlog and ends far above zero.
    lags = [lag for _, lag, _, _ in samples]
    applied_in_flood = samples[-1][2] - applied_warm
    assert lags[-1] >= BACKLOG // 2, f"lag not reported above half the backlog: {lags}"
    assert lags[0] < QUEUED_MIN_MESSAGES, f"a backlog before the flood: {lags}"
    assert applied_in_flood < BACKLOG // 2, f"the worker was not slow: {applied_in_flood:,} applied while throttled"

    # Memory stays bounded: librdkafka's queue limits, not the backlog, set the peak.
    queue_bound = ALLOCATOR_FACTOR * (
        QUEUED_MAX_KBYTES * 1024
        + QUEUED_MIN_MESSAGES * PER_MESSAGE_OVERHEAD
        + cfg.kafka.partitions * FETCH_MESSAGE_MAX_BYTES
    )
    bound = rss_warm + queue_bound + applied_in_flood * PER_APPLIED_EVENT
    peak = max(rss for *_, rss in samples)
    print(
        f"warm {rss_warm / MIB:.0f} MiB, peak {peak / MIB:.0f} MiB, bound {bound / MIB:.0f} MiB, "
        f"{applied_in_flood:,} applied while throttled; (t, lag, applied, MiB): "
        f"{[(round(t, 1), lag, a, round(r / MIB)) for t, lag, a, r in samples]}"
    )
    backlog = len(warm) + BACKLOG - samples[-1][2]
    buffered_everything = rss_warm + backlog * BYTES_PER_BUFFERED  # what holding the whole backlog would take
    assert peak <= bound, (
        f"resident memory {peak / MIB:.0f} MiB passed its bound {bound / MIB:.0f} MiB "
        f"(warm {rss_warm / MIB:.0f} MiB, {applied_in_flood:,} applied while throttled)"
    )
    assert bound < buffered_everything, "the backlog is too small to tell a bounded queue from an unbounded one"

    # Throttle lifted: the same worker drains the backlog.
    events_in = len(warm) + BACKLOG
    # ~20 s here; the deadline allows a machine several times slower.
    worker.wait_for(lambda: handled(scrape(worker.port)) >= events_in, timeout_s=300, what="the backlog to drain")
    worker.wait_for(
        lambda: total(scrape(worker.port), "streamrec_consumer_lag_messages") == 0,
        timeout_s=60,
        what="the lag gauge to come back to 0",
    )
    worker.stop(signal.SIGTERM)  # checkpoints every partition
    states = final_states(cfg)
    reflected = sum(p.counts["applied"] for p in states.values())
    duplicates = sum(p.counts["duplicate"] for p in states.values())
    row = fault_row(
        f"slow consumer: {BACKLOG:,}-event backlog, worker at 1/10 CPU",
        "lag reported, memory bounded, every event applied once",
        events_in,
        reflected,
        duplicates,
        max(events_in - reflected, 0),
    )
    assert row.held, row
    assert sum(p.counts["late"] for p in states.values()) == 0
