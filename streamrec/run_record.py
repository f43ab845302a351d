"""The run record: what a demo run measured, as one JSON document that ``streamrec report`` renders.

What it holds (no user, item or event ids):

* ``prequential``: per learner, cumulative scored clicks and hits at samples taken after the worker's
  batches (every ``min_events`` applied events at least), against events applied over the whole
  stream and seconds since the start; drift detections as the stream position they fired at.
  Cumulative counts let the report choose its own window, and let a long run's samples be thinned
  (every other one dropped) without losing anything but resolution. The learners' own windowed
  series (``RankingScore.series``) are per partition and 1,000 scored clicks wide: a demo of a few
  minutes would give none.
* ``latency_ms``: scoring, freshness and HTTP samples summarised as exact p50/p99 and a histogram.
* ``models``: the registry's versions and its history of promotions and rollbacks, and when this
  process started serving each version.
* ``summary``: what the demo printed.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from stream.model_artifact import utc_timestamp
from stream.processor import LEARNERS, PartitionProcessor

log = logging.getLogger(__name__)

RECORD_FORMAT = "streamrec-run-record"
RECORD_VERSION = 1
WRITE_HINT = "write one with `streamrec demo --run-record PATH`"


class RecordError(Exception):
    """A run record or ablations file that cannot be used: one line naming the fix."""


# -- the record -------------------------------------------------------------------------------------


class Histogram(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Samples (ms): exact percentiles, and counts between ``edges`` (log-spaced when ``log_scale``)."""

    n: int
    p50: float | None = None
    p99: float | None = None
    mean: float | None = None
    min: float | None = None
    max: float | None = None
    edges: list[float] = []
    counts: list[int] = []
    log_scale: bool = False

    def __post_init__(self) -> None:
        if self.counts and len(self.edges) != len(self.counts) + 1:
            raise ValueError(
                f"a histogram needs one edge more than counts ({len(self.edges)} edges, {len(self.counts)} counts)"
            )
        if any(b <= a for a, b in pairwise(self.edges)):
            raise ValueError("histogram edges must increase")


class LearnerCurve(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    scored: list[int]  # cumulative scored clicks at each sample
    hits: list[int]  # cumulative hits (clicked item in the top k) at each sample
    drift_at: list[int] = []  # stream position (events applied) of each drift detection
    drift_monitored: bool = True


class Prequential(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    k: int
    every: int  # one click in ``every`` is ranked against the whole catalogue
    t_s: list[float]  # seconds since the run started, at each sample
    events: list[int]  # events applied over the whole stream, at each sample
    learners: dict[str, LearnerCurve]

    def __post_init__(self) -> None:
        n = len(self.events)
        if len(self.t_s) != n:
            raise ValueError(f"prequential has {len(self.t_s)} t_s but {n} events samples")
        for name, curve in self.learners.items():
            if len(curve.scored) != n or len(curve.hits) != n:
                raise ValueError(
                    f"learner {name!r} has {len(curve.scored)} scored and {len(curve.hits)} hits samples, not {n}"
                )
            if any(h > s for h, s in zip(curve.hits, curve.scored)):
                raise ValueError(f"learner {name!r} has more hits than scored clicks")


class ServedVersion(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    version: int
    at: str  # UTC, when this process started serving it
    t_s: float
    events: int


class RegisteredVersion(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    version: int
    created_at: str
    validation: dict[str, float]
    is_current: bool
    problem: str | None = None


class Change(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    action: str  # "promote" | "rollback"
    version: int
    at: str
    validation: dict[str, float] = {}


class Models(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    versions: list[RegisteredVersion] = []
    history: list[Change] = []
    served: list[ServedVersion] = []


class RunRecord(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    format: str
    version: int
    source: str
    started_at: str
    finished_at: str
    summary: dict[str, Any]
    prequential: Prequential
    latency_ms: dict[str, Histogram]
    models: Models


class _Header(msgspec.Struct):
    format: str | None = None
    version: int | None = None


def load_record(path: str | Path) -> RunRecord:
    """Read and check a run record; RecordError (one line, with the fix) if it cannot be used."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RecordError(f"no run record at {path}; {WRITE_HINT}") from None
    except OSError as exc:
        raise RecordError(f"cannot read {path} ({exc.strerror}); pass a readable run record") from None
    try:
        header = msgspec.json.decode(raw, type=_Header)
    except msgspec.DecodeError as exc:
        raise RecordError(f"{path} is not a JSON run record ({exc}); {WRITE_HINT}") from None
    if header.format != RECORD_FORMAT:
        raise RecordError(f"{path} is not a run record (format {header.format!r}, not {RECORD_FORMAT!r}); {WRITE_HINT}")
    if header.version != RECORD_VERSION:
        raise RecordError(
            f"{path} is run record version {header.version}; this streamrec reads version "
            f"{RECORD_VERSION}: render it with the streamrec that wrote it, or write a new one"
        )
    try:
        return msgspec.json.decode(raw, type=RunRecord)
    except msgspec.ValidationError as exc:
        raise RecordError(f"{path} is a malformed run record ({exc}); {WRITE_HINT}") from None


def write_record(record: RunRecord, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(msgspec.json.encode(record))
    tmp.replace(path)
    return path


# -- building one -----------------------------------------------------------------------------------


def _sig(x: float, digits: int = 6) -> float:
    return float(f"{x:.{digits}g}")


def histogram(samples_ms: Iterable[float], bins: int = 40) -> Histogram:
    """Exact p50/p99 of the samples and their counts in ``bins`` bins (log-spaced over a wide range)."""
    a = np.asarray(list(samples_ms), dtype=np.float64)
    a = a[np.isfinite(a)]
    if not len(a):
        return Histogram(n=0)
    lo, hi = float(a.min()), float(a.max())
    log_scale = lo > 0 and hi / lo > 20
    if log_scale:
        edges = np.geomspace(lo, hi, bins + 1)
    else:
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    counts, _ = np.histogram(a, edges)
    rounded = [_sig(e) for e in edges]  # for the plot only: the counts are of the exact edges
    if any(b <= a_ for a_, b in pairwise(rounded)):
        rounded = [float(e) for e in edges]
    p50, p99 = np.percentile(a, [50, 99])
    return Histogram(
        n=len(a),
        p50=round(float(p50), 3),
        p99=round(float(p99), 3),
        mean=round(float(a.mean()), 3),
        min=_sig(lo),
        max=_sig(hi),
        edges=rounded,
        counts=[int(c) for c in counts],
        log_scale=log_scale,
    )


class RunRecorder:
    """Samples the worker's processors after its batches (a ``BatchListener``, on the worker's thread).

    ``owned`` is the worker's partition -> OwnedPartition map. The last processor seen of each
    partition is kept, so the figures can still be read after the worker released its partitions.
    A failure here is logged once and never reaches the worker.
    """

    def __init__(
        self,
        owned: Mapping[int, Any],
        k: int = 10,
        every: int = 1,
        min_events: int = 200,
        max_samples: int = 2000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._owned = owned
        self.k, self.every = k, every
        self._clock = clock
        self._start = clock()
        self.started_at = utc_timestamp()
        self._step = min_events
        self._max_samples = max_samples
        self._processors: dict[int, PartitionProcessor] = {}
        self._drift_seen: dict[tuple[int, str], int] = {}
        self.t_s: list[float] = []
        self.events: list[int] = []
        self.scored: dict[str, list[int]] = {name: [] for name in LEARNERS}
        self.hits: dict[str, list[int]] = {name: [] for name in LEARNERS}
        self.drift_at: dict[str, list[int]] = {name: [] for name in LEARNERS}
        self.served: list[ServedVersion] = []
        self._failed = False

    def batch_applied(self, applied: list) -> None:
        try:
            for partition, owned in list(self._owned.items()):
                self._processors[partition] = owned.processor
            self.sample()
        except Exception:  # the record is a by-product: the worker goes on
            if not self._failed:
                log.exception("the run recorder failed; the run record will stop here")
            self._failed = True

    def sample(self, force: bool = False) -> None:
        if self._failed or not self._processors:
            return
        procs = list(self._processors.items())
        events = sum(p.counts["applied"] for _, p in procs)
        if not force and self.events and events - self.events[-1] < self._step:
            return
        if force and self.events and events == self.events[-1]:
            return
        for partition, p in procs:
            applied = p.counts["applied"]
            for name, monitor in p.drift.items():
                seen = self._drift_seen.get((partition, name), 0)
                for position in monitor.detections[seen:]:  # mapped onto the whole stream's count
                    self.drift_at.setdefault(name, []).append(max(events - (applied - position), 0))
                self._drift_seen[(partition, name)] = len(monitor.detections)
        self.t_s.append(round(self._clock() - self._start, 3))
        self.events.append(events)
        for name in self.scored:
            self.scored[name].append(sum(p.scores[name].n for _, p in procs if name in p.scores))
            self.hits[name].append(sum(p.scores[name].hits for _, p in procs if name in p.scores))
        if len(self.events) > self._max_samples:
            self._thin()

    def _thin(self) -> None:
        """Drop every other sample (the last one stays): cumulative counts lose only resolution."""
        keep = list(range(0, len(self.events), 2))
        if keep[-1] != len(self.events) - 1:
            keep.append(len(self.events) - 1)
        self.t_s = [self.t_s[i] for i in keep]
        self.events = [self.events[i] for i in keep]
        for series in (self.scored, self.hits):
            for name, values in series.items():
                series[name] = [values[i] for i in keep]
        self._step *= 2

    def model_served(self, version: int) -> None:
        """Called from another thread than the worker's: reading the processors' counts is a benign race."""
        events = sum(p.counts["applied"] for p in list(self._processors.values()))
        self.served.append(
            ServedVersion(version=version, at=utc_timestamp(), t_s=round(self._clock() - self._start, 3), events=events)
        )

    def finish(
        self, summary: Mapping[str, Any], latencies_ms: Mapping[str, Sequence[float]], registry_root: str | Path | None
    ) -> RunRecord:
        """The record; call after the worker has stopped (it reads the processors without locks)."""
        self.sample(force=True)
        summary = msgspec.json.decode(msgspec.json.encode(dict(summary)))  # a copy, plain JSON types
        if isinstance(summary.get("http_ms"), dict):
            summary["http_ms"].pop("first_failures", None)  # they name users
        learners = {}
        for name in self.scored:
            drift = any(name in p.drift for p in self._processors.values())
            learners[name] = LearnerCurve(
                scored=self.scored[name],
                hits=self.hits[name],
                drift_at=sorted(self.drift_at.get(name, [])),
                drift_monitored=drift,
            )
        return RunRecord(
            format=RECORD_FORMAT,
            version=RECORD_VERSION,
            source="streamrec demo",
            started_at=self.started_at,
            finished_at=utc_timestamp(),
            summary=summary,
            prequential=Prequential(k=self.k, every=self.every, t_s=self.t_s, events=self.events, learners=learners),
            latency_ms={name: histogram(samples) for name, samples in latencies_ms.items()},
            models=registry_models(registry_root, self.served),
        )


def registry_models(root: str | Path | None, served: list[ServedVersion] | None = None) -> Models:
    """The registry's versions and promotion history (validation figures only); empty if there is none."""
    from offline.registry import Registry  # the registry's code; it imports no torch

    served = list(served or [])
    if root is None or not Path(root).is_dir():
        return Models(served=served)
    registry = Registry(root)

    def finite(metrics: Mapping[str, float]) -> dict[str, float]:
        return {k: v for k, v in metrics.items() if isinstance(v, int | float) and math.isfinite(v)}

    versions = [
        RegisteredVersion(
            version=v.version,
            created_at=v.created_at,
            validation=finite(v.validation),
            is_current=v.is_current,
            problem=v.problem,
        )
        for v in registry.list()
    ]
    history = [
        Change(action=h.action, version=h.version, at=h.at, validation=finite(h.metrics.get("validation", {})))
        for h in registry.history()
    ]
    return Models(versions=versions, history=history, served=served)
