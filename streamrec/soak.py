"""``streamrec soak``: one stream worker under a steady event rate for minutes, its memory sampled.

    producer thread (steady rate, endless synthetic replay) ──► fresh topic ──► `streamrec stream`
                                                                               (a child process)
    this process: every few seconds, the child's resident memory (psutil) and its /metrics

The worker runs as its own process so the resident set measured is the worker's alone (not the
producer's, not the broker's). The synthetic stream is replayed lap after lap; every lap gets
fresh event ids (``<id>.<lap>``) so de-duplication does not drop the repeats, and every event is
stamped with the time it is sent, as a live producer would, so no event is late.

What bounds the worker's memory, and how the soak checks each bound:

* per-user lists: recent items <= ``state.recent_items``, seen items <= ``state.max_seen_per_user``;
* the de-duplication window: <= ``state.dedup_window`` event ids per partition;
* co-visitation: a row grows to ``2 * state.covis_neighbours`` entries, then is pruned back to
  ``state.covis_neighbours`` (stream/state/covisitation.py), so ``2 * covis_neighbours`` is the bound.

Memory grows until the state has reached those bounds, so by default the warm-up lasts that long
(:func:`fill_times`): at 1,000 events/s the de-duplication windows fill after ~7 minutes, and users
and items keep arriving until the first lap of the synthetic stream is over (~6 minutes).

The exported gauges (``streamrec_state_entries{kind}``) count rows -- users, items, co-visitation
rows -- not the length of each row, so the per-row bounds are read from the final snapshot of each
partition. Users and items are never evicted (there is no TTL): their count is bounded only by the
population, which the synthetic source fixes, so those counts plateau here; on an open population
they would grow with it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import psutil
from prometheus_client.parser import text_string_to_metric_families

from stream.config import Config
from stream.events import Event
from stream.kafka.broker import free_port
from stream.kafka.clients import ensure_topics, make_producer
from stream.kafka.partitioner import partition_for
from stream.produce import produce_events
from stream.snapshot import SnapshotStore
from stream.sources.synthetic import SyntheticConfig, synthetic_events

log = logging.getLogger(__name__)

GROWTH_LIMIT_PCT = 10.0  # the bound on resident-memory growth after warm-up
MIN_WARMUP_MINUTES = 2.0
# The soak's producer batches for 100 ms. Tansu's in-memory engine slows down with the number of
# record batches in a partition: at 1,000 events/s with the clients' 5 ms linger (~1.5 events a
# batch) the worker's fetches stalled after ~450,000 events, Tansu at 100 % CPU; a plain consumer
# reading 4 partitions of 50,000 one-event batches from offset 0 got nothing in 120 s. 100 ms makes
# ~25 events a batch at 1,000/s. It changes what the broker stores, not what the worker does.
PRODUCER_LINGER_MS = 100


# -- the worker's /metrics ----------------------------------------------------------------------


def scrape(port: int, host: str = "127.0.0.1", timeout_s: float = 2.0) -> dict[str, dict[tuple, float]] | None:
    """Every sample of a Prometheus endpoint as {name: {label items: value}}; None if it does not answer."""
    try:
        body = urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=timeout_s).read().decode()
    except OSError:
        return None
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def total(metrics: dict | None, name: str) -> float:
    """The sum of every labelled series of ``name`` (0 when absent)."""
    return sum((metrics or {}).get(name, {}).values())


def by_label(metrics: dict | None, name: str, label: str) -> dict[str, float]:
    return {dict(k)[label]: v for k, v in (metrics or {}).get(name, {}).items() if label in dict(k)}


def applied(metrics: dict | None) -> int:
    return int(total(metrics, "streamrec_events_processed_total"))


def handled(metrics: dict | None) -> int:
    """Events the worker is done with: applied, dropped as duplicates or dead-lettered."""
    return int(
        applied(metrics)
        + total(metrics, "streamrec_events_duplicate_total")
        + total(metrics, "streamrec_events_dead_lettered_total")
    )


# -- the stream ---------------------------------------------------------------------------------


def endless_stream(synthetic: SyntheticConfig, stop: threading.Event) -> Iterator[Event]:
    """The synthetic stream lap after lap until ``stop``: fresh ids per lap, stamped at send time."""
    lap = 0
    while True:
        for event in synthetic_events(synthetic):
            if stop.is_set():
                return
            yield msgspec.structs.replace(event, event_id=f"{event.event_id}.{lap}", ts=int(time.time() * 1000))
        lap += 1


# -- the worker process -------------------------------------------------------------------------


class WorkerChild:
    """``streamrec stream`` as a child process with a metrics port of its own."""

    def __init__(self, cfg: Config, data_dir: Path, worker_args: Sequence[str] = ()) -> None:
        self.port = free_port()
        self.log_path = data_dir.parent / "worker.log"
        argv = [
            sys.executable,
            "-m",
            "streamrec.cli",
            "stream",
            *worker_args,
            "--bootstrap-servers",
            cfg.kafka.bootstrap_servers,
            "--metrics-port",
            str(self.port),
            "--data-dir",
            str(data_dir),
            # After the caller's --set: the soak's own topic and group win.
            "--set",
            f"kafka.events_topic={json.dumps(cfg.kafka.events_topic)}",
            "--set",
            f"kafka.group_id={json.dumps(cfg.kafka.group_id)}",
            "--set",
            'metrics.host="127.0.0.1"',
        ]
        with self.log_path.open("ab") as log_file:  # a pipe nobody reads would block a chatty worker
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log_file)
        self.ps = psutil.Process(self.proc.pid)

    def rss_mb(self) -> float | None:
        try:
            return self.ps.memory_info().rss / 2**20
        except psutil.Error:  # exited
            return None

    def metrics(self) -> dict | None:
        return scrape(self.port)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, chars: int = 1500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM (the worker checkpoints every partition and leaves the group), SIGKILL if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


# -- state bounds from the final snapshots ------------------------------------------------------


def _bounds(
    st: Any, longest: dict[str, int], covis_over_target: int, synthetic: SyntheticConfig
) -> list[dict[str, Any]]:
    """Each per-row bound of the state (``st``: cfg.state) with the longest row seen."""
    bounds = [
        {
            "what": "recent items per user",
            "setting": "state.recent_items",
            "bound": st.recent_items,
            "max_seen": longest["recent"],
        },
        {
            "what": "seen (clicked) items per user",
            "setting": "state.max_seen_per_user",
            "bound": st.max_seen_per_user,
            "max_seen": longest["seen"],
            "note": (
                f"not reachable here: the synthetic catalogue has {synthetic.n_items:,} items"
                if synthetic.n_items <= st.max_seen_per_user
                else None
            ),
        },
        {
            "what": "event ids in a partition's de-duplication window",
            "setting": "state.dedup_window",
            "bound": st.dedup_window,
            "max_seen": longest["dedup"],
        },
        {
            "what": "co-visitation neighbours per item",
            "setting": "2 * state.covis_neighbours",
            "bound": 2 * st.covis_neighbours,
            "max_seen": longest["covis"],
            "note": f"rows are pruned back to {st.covis_neighbours} once they pass {2 * st.covis_neighbours}; "
            f"{covis_over_target:,} rows sat between the two at the end",
        },
    ]
    return bounds


def check_bounds(cfg: Config, data_dir: Path, synthetic: SyntheticConfig) -> dict[str, Any]:
    """Per-row sizes of every partition's newest snapshot against the configured bounds."""
    store = SnapshotStore(data_dir / "snapshots")
    topic, st = cfg.kafka.events_topic, cfg.state
    snaps = {p: s for p in range(cfg.kafka.partitions) if (s := store.latest(topic, p)) is not None}
    longest = {"recent": 0, "seen": 0, "dedup": 0, "covis": 0}
    users, items, covis_over_target, snapshot_offsets, snapshot_applied, duplicates = set(), 0, 0, 0, 0, 0
    for snap in snaps.values():
        state = snap.state
        fs = state["state"]
        snapshot_offsets += snap.offset
        snapshot_applied += state["counts"]["applied"]
        duplicates += state["counts"]["duplicate"]
        longest["recent"] = max([longest["recent"], *(len(r) for _, r in fs["recent"])])
        longest["seen"] = max([longest["seen"], *(len(s) for _, s in fs["seen"])])
        longest["dedup"] = max(longest["dedup"], len(state["dedup"]["ids"]))
        rows = [len(keys) for _, keys, _ in fs["covis"]["rows"]]
        longest["covis"] = max([longest["covis"], *rows])
        covis_over_target += sum(1 for n in rows if n > st.covis_neighbours)
        users.update(fs["users"])
        items += len(fs["items"])
    bounds = _bounds(st, longest, covis_over_target, synthetic)
    for b in bounds:
        b["held"] = b["max_seen"] <= b["bound"]
        b["reached"] = b["max_seen"] >= b["bound"]
        if b.get("note") is None:
            b.pop("note", None)
    return {
        "partitions_snapshotted": len(snaps),
        "snapshot_offsets": snapshot_offsets,
        "snapshot_applied": snapshot_applied,
        "snapshot_duplicates": duplicates,
        "bounds": bounds,
        "population": {
            "users": len(users),
            "user_population": synthetic.n_users,
            "item_rows": items,
            "item_population": synthetic.n_items,
            "note": (
                "users and items are never evicted (no TTL): their rows are bounded by the synthetic "
                f"population ({synthetic.n_users:,} users, {synthetic.n_items:,} items; an item has a row "
                "in each partition that saw it), so they plateau here and would grow with an open one"
            ),
        },
    }


def _dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def fill_times(cfg: Config, rate: float, synthetic: SyntheticConfig) -> dict[str, Any]:
    """Seconds until the state can have reached its bounds at ``rate``: every partition's
    de-duplication window full (the partition with the smallest share of the stream fills last),
    and one lap of the synthetic stream done (users and items arrive through the lap)."""
    partitions = cfg.kafka.partitions
    per_partition = [0] * partitions
    owner: dict[str, int] = {}
    lap = 0
    for event in synthetic_events(synthetic):
        p = owner.get(event.user_id)
        if p is None:
            p = owner[event.user_id] = partition_for(event.user_id, partitions)
        per_partition[p] += 1
        lap += 1
    smallest_share = min(per_partition) / lap
    return {
        "lap_events": lap,
        "lap_s": round(lap / rate, 1),
        "smallest_partition_share": round(smallest_share, 4),
        "dedup_windows_full_s": round(cfg.state.dedup_window / (rate * smallest_share), 1),
    }


# -- the run ------------------------------------------------------------------------------------


def plan_warmup(
    cfg: Config, minutes: float, rate: float, warmup_minutes: float | None, synthetic: SyntheticConfig
) -> tuple[float, dict[str, Any]]:
    """The warm-up to use (``None``: until the state can have filled, at least ``MIN_WARMUP_MINUTES``)
    and the fill times it rests on; ValueError when the run is too short for it."""
    fill = fill_times(cfg, rate, synthetic)
    filled_min = max(fill["lap_s"], fill["dedup_windows_full_s"]) / 60.0
    fill["warmup_basis"] = "given" if warmup_minutes is not None else "auto: the state's fill time"
    if warmup_minutes is None:
        warmup_minutes = round(max(MIN_WARMUP_MINUTES, filled_min), 2)
        if warmup_minutes >= minutes:
            raise ValueError(
                f"at {rate:g} events/s the state fills in {filled_min:.1f} min (de-duplication windows of "
                f"{cfg.state.dedup_window:,} ids per partition: {fill['dedup_windows_full_s']:.0f} s; one lap of the "
                f"synthetic population: {fill['lap_s']:.0f} s): run longer than that (--minutes), or pass "
                "--warmup-minutes to measure growth while it fills"
            )
    elif warmup_minutes < filled_min:
        fill["warmup_note"] = (
            f"the warm-up ends before the state can have filled ({filled_min:.1f} min): "
            "growth after it includes the state filling up to its bounds"
        )
    if warmup_minutes >= minutes:
        raise ValueError(f"the warm-up ({warmup_minutes:g} min) must be shorter than the run ({minutes:g} min)")
    return warmup_minutes, fill


@dataclass(frozen=True)
class SoakPlan:
    """What a soak run does. ``warmup_minutes`` None: until the state can have filled (:func:`plan_warmup`)."""

    minutes: float = 10.0
    rate: float = 1000.0  # events produced per second
    warmup_minutes: float | None = None
    sample_every_s: float = 5.0
    drain_timeout_s: float = 180.0  # after the run, how long the worker may take to apply what was produced
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


def run_soak(
    cfg: Config,
    plan: SoakPlan,
    worker_args: Sequence[str] = (),
    stop: threading.Event | None = None,
    fill: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Produce at ``plan.rate`` for ``plan.minutes`` into a fresh topic, one worker child consuming;
    returns the figures.

    ``cfg.kafka.bootstrap_servers`` must name a running cluster (the CLI starts the embedded broker).
    ``worker_args`` (e.g. ``--config``/``--set``) are passed to the worker, so it runs the config
    whose bounds are checked. ``fill``: see :func:`plan_warmup` (called here unless ``fill`` is given,
    i.e. the caller planned already). RuntimeError when the worker or the producer fails.
    """
    if fill is None:
        warmup, fill = plan_warmup(cfg, plan.minutes, plan.rate, plan.warmup_minutes, plan.synthetic)
        plan = dataclasses.replace(plan, warmup_minutes=warmup)
    stop = stop or threading.Event()
    name = f"streamrec-soak-{uuid.uuid4().hex[:8]}"
    kafka = msgspec.structs.replace(cfg.kafka, events_topic=name, group_id=f"{name}-g")
    with tempfile.TemporaryDirectory(prefix="streamrec-soak-") as tmp:
        data_dir = Path(tmp) / "data"
        cfg = msgspec.structs.replace(
            cfg, kafka=kafka, worker=msgspec.structs.replace(cfg.worker, data_dir=str(data_dir))
        )
        ensure_topics(cfg.kafka)
        worker = WorkerChild(cfg, data_dir, worker_args)
        try:
            figures = Soak(cfg, plan, worker, data_dir).run(stop)
            if not figures["within_bound"] and "warmup_note" in fill:
                figures["reason"] += f" ({fill['warmup_note']})"
            return {**figures, "fill": fill}
        finally:
            worker.stop()


class SoakProducer(threading.Thread):
    """The endless synthetic stream at a steady rate, counted as it is handed to the producer."""

    def __init__(self, cfg: Config, plan: SoakPlan) -> None:
        super().__init__(name="soak-producer", daemon=True)
        self.cfg, self.plan = cfg, plan
        self.produced = 0
        self.sent: int | None = None  # delivered, once stopped
        self.error: BaseException | None = None
        self._stop_producing = threading.Event()

    def _counted(self) -> Iterator[Event]:
        for event in endless_stream(self.plan.synthetic, self._stop_producing):
            yield event
            self.produced += 1

    def run(self) -> None:
        producer = make_producer(self.cfg.kafka, **{"linger.ms": PRODUCER_LINGER_MS})
        try:
            self.sent = produce_events(producer, self.cfg.kafka.events_topic, self._counted(), rate=self.plan.rate)
        except BaseException as exc:
            self.error = exc

    def finish(self) -> int:
        """Stop producing; the events delivered (RuntimeError if the producer failed or hangs)."""
        self._stop_producing.set()
        self.join(60)
        if self.error is not None:
            raise RuntimeError(f"the producer failed: {self.error}") from self.error
        if self.sent is None:
            raise RuntimeError("the producer did not finish within 60 s")
        return self.sent


class Soak:
    """One soak run: wait for the worker, produce and sample through warm-up and steady state,
    drain, then check the memory and state bounds."""

    def __init__(self, cfg: Config, plan: SoakPlan, worker: WorkerChild, data_dir: Path) -> None:
        self.cfg, self.plan, self.worker, self.data_dir = cfg, plan, worker, data_dir
        self.producer = SoakProducer(cfg, plan)
        self.samples: list[dict[str, Any]] = []
        self.warm: dict[str, Any] | None = None
        self.started = time.monotonic()

    def run(self, stop: threading.Event) -> dict[str, Any]:
        self._await_partitions(stop)
        p = self.plan
        log.info(
            "worker pid %d owns %d partitions of %s; producing %s events/s for %g min (warm-up %g min), "
            "sampling every %g s",
            self.worker.proc.pid,
            self.cfg.kafka.partitions,
            self.cfg.kafka.events_topic,
            f"{p.rate:,.0f}",
            p.minutes,
            p.warmup_minutes,
            p.sample_every_s,
        )
        self.started = time.monotonic()
        start = self.sample("start")
        self.producer.start()
        interrupted = self._produce_and_sample(stop)
        sent = self.producer.finish()
        end = self._drain(sent, stop)
        alive = self.worker.alive()
        code = self.worker.stop()  # SIGTERM: every partition is checkpointed before it exits
        state = check_bounds(self.cfg, self.data_dir, p.synthetic)
        outcome = Outcome(sent, start, end, state, interrupted, alive, code)
        return self._figures(outcome, self._reasons(outcome))

    def _await_partitions(self, stop: threading.Event) -> None:
        deadline = time.monotonic() + 90
        worker, partitions = self.worker, self.cfg.kafka.partitions
        while (m := worker.metrics()) is None or total(m, "streamrec_assigned_partitions") < partitions:
            if not worker.alive():
                raise RuntimeError(f"the worker exited with code {worker.proc.returncode}: {worker.log_tail()}")
            if time.monotonic() > deadline or stop.is_set():
                raise RuntimeError(
                    f"the worker did not own all {partitions} partitions within 90 s: {worker.log_tail()}"
                )
            time.sleep(0.2)

    def sample(self, phase: str) -> dict[str, Any]:
        """The worker's resident memory and metrics now, kept and logged as a progress line."""
        metrics = self.worker.metrics()
        entries = by_label(metrics, "streamrec_state_entries", "kind")
        s = {
            "t_s": round(time.monotonic() - self.started, 1),
            "phase": phase,
            "rss_mb": self.worker.rss_mb(),
            "produced": self.producer.produced,
            "applied": applied(metrics),
            "handled": handled(metrics),
            "lag": int(total(metrics, "streamrec_consumer_lag_messages")),
            "entries": {k: int(v) for k, v in entries.items()},
        }
        self.samples.append(s)
        rss = f"{s['rss_mb']:.1f} MB" if s["rss_mb"] is not None else "-"
        log.info(
            "t=%6.0fs %-8s produced %9s applied %9s lag %7s rss %9s  %s",
            s["t_s"],
            phase,
            f"{s['produced']:,}",
            f"{s['applied']:,}",
            f"{s['lag']:,}",
            rss,
            " ".join(f"{k} {v:,}" for k, v in sorted(s["entries"].items())),
        )
        return s

    def _produce_and_sample(self, stop: threading.Event) -> bool:
        """Sample every ``sample_every_s`` and once at the end of the warm-up; True if ``stop`` cut it short."""
        warm_at = self.started + (self.plan.warmup_minutes or 0.0) * 60.0
        end_at = self.started + self.plan.minutes * 60.0
        next_at = self.started + self.plan.sample_every_s
        while time.monotonic() < end_at and self.worker.alive():
            wake = min(next_at, warm_at if self.warm is None else end_at, end_at)
            if stop.wait(max(0.0, wake - time.monotonic())):
                return True
            now = time.monotonic()
            if self.warm is None and now >= warm_at:
                self.warm = self.sample("warm")
                next_at = max(next_at, now + self.plan.sample_every_s / 2)
            elif now >= next_at and now < end_at:
                self.sample("warmup" if self.warm is None else "steady")
                next_at += self.plan.sample_every_s
        return False

    def _drain(self, sent: int, stop: threading.Event) -> dict[str, Any]:
        """Wait until every produced event is handled by the worker (or the timeout); the end sample."""
        deadline = time.monotonic() + self.plan.drain_timeout_s
        while self.worker.alive() and not stop.is_set() and time.monotonic() < deadline:
            if handled(self.worker.metrics()) >= sent:
                break
            time.sleep(0.5)
        return self.sample("end")

    def _growth(self) -> tuple[float | None, float | None, float | None]:
        """Resident MB after the warm-up, its peak since, and the growth between them (%)."""
        warm = self.warm["rss_mb"] if self.warm else None
        after = [s["rss_mb"] for s in self.samples if s["phase"] in ("steady", "end") and s["rss_mb"] is not None]
        peak = max(after) if after else None
        growth = round((peak - warm) / warm * 100.0, 2) if warm and peak else None
        return warm, peak, growth

    def _reasons(self, o: Outcome) -> list[str]:
        """Why the run is out of bounds; empty when it is within them."""
        reasons = []
        if o.interrupted:
            reasons.append("interrupted before the end of the run")
        if not o.worker_alive:
            reasons.append(f"the worker died during the run: {self.worker.log_tail(600)}")
        elif o.exit_code != 0:
            reasons.append(f"the worker exited with code {o.exit_code} on SIGTERM")
        growth = self._growth()[2]
        if growth is None:
            reasons.append("no memory sample after the warm-up")
        elif growth >= GROWTH_LIMIT_PCT:
            reasons.append(f"resident memory grew {growth}% after the warm-up (limit {GROWTH_LIMIT_PCT:g}%)")
        for b in o.state["bounds"]:
            if not b["held"]:
                reasons.append(f"{b['what']}: {b['max_seen']:,} > {b['setting']} = {b['bound']:,}")
        if o.end["handled"] < o.sent:
            reasons.append(
                f"not drained within {self.plan.drain_timeout_s:g} s: {o.end['handled']:,} of {o.sent:,} handled"
            )
        if o.state["snapshot_duplicates"]:
            reasons.append(f"{o.state['snapshot_duplicates']:,} events dropped as duplicates (every event id is fresh)")
        if o.sent != o.state["snapshot_applied"] or o.state["snapshot_offsets"] != o.sent:
            reasons.append(
                f"{o.sent:,} produced but {o.state['snapshot_applied']:,} applied in the final snapshots "
                f"(offsets {o.state['snapshot_offsets']:,})"
            )
        return reasons

    def _figures(self, o: Outcome, reasons: list[str]) -> dict[str, Any]:
        p, state, samples = self.plan, o.state, self.samples
        warm, peak, growth = self._growth()
        rss = [s["rss_mb"] for s in samples if s["rss_mb"] is not None]
        within = not reasons
        if within:
            reasons = [
                f"memory grew {growth}% after the warm-up (< {GROWTH_LIMIT_PCT:g}%), every state bound "
                f"held, all {o.sent:,} events applied exactly once"
            ]
        return {
            "minutes": p.minutes,
            "warmup_minutes": p.warmup_minutes,
            "rate_per_s": p.rate,
            "sample_every_s": p.sample_every_s,
            "seconds": round(time.monotonic() - self.started, 1),
            "events_produced": o.sent,
            "events_applied": state["snapshot_applied"],
            "events_applied_metric": o.end["applied"],
            "duplicates": state["snapshot_duplicates"],
            "lost": o.sent - state["snapshot_applied"],
            "achieved_rate_per_s": round(o.sent / (p.minutes * 60.0)) if not o.interrupted else None,
            "max_lag_messages": max(s["lag"] for s in samples),
            "rss_mb": {
                "start": _mb(o.start["rss_mb"]),
                "after_warmup": _mb(warm),
                "end": _mb(o.end["rss_mb"]),
                "max": _mb(max(rss)) if rss else None,
                "max_after_warmup": _mb(peak),
            },
            "growth_after_warmup_pct": growth,
            "growth_limit_pct": GROWTH_LIMIT_PCT,
            "state_entries": o.end["entries"],
            "state": state,
            "disk_mb": self._disk_mb(),
            "samples": [{k: s[k] for k in ("t_s", "phase", "rss_mb", "produced", "applied", "lag")} for s in samples],
            "within_bound": within,
            "reason": "; ".join(reasons),
        }

    def _disk_mb(self) -> dict[str, Any]:
        return {
            "snapshots": round(_dir_mb(self.data_dir / "snapshots"), 1),
            "training_log": round(_dir_mb(self.data_dir / "training-log"), 1),
            "note": "the training log is kept for worker.training_log_retention_s of stream time "
            f"({self.cfg.worker.training_log_retention_s / 86400:g} days): it grows on disk for that long",
        }


@dataclass(frozen=True)
class Outcome:
    """How a soak run ended: what was sent, the first and last samples, the final snapshots' check."""

    sent: int
    start: dict[str, Any]
    end: dict[str, Any]
    state: dict[str, Any]
    interrupted: bool
    worker_alive: bool
    exit_code: int


def _mb(x: float | None) -> float | None:
    return round(x, 1) if x is not None else None
