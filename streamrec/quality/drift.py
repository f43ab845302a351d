"""Protocol (e): what a known drift does to each ranker, and whether the learners' detectors see it.

On a generated world the drift point is known (``drift_ts_ms``). From protocol (a)'s per-click ranks
(``RankLog``) and where each of those clicks fell in the stream (``DriftClicks``), each ranker gets
its recall@k in windows of clicks before and after the drift and a **recovery**: the clicks (and
events) after the drift until its windowed recall is back within ``TOLERANCE`` of its level just
before the drift. Each learner's detector gets its false alarms before the drift, its detections
after it and the delay of the first. Definitions: docs/protocol.md, "(e) Drift".
"""

from __future__ import annotations

from array import array
from typing import Any

import numpy as np

from stream.events import Event
from stream.processor import Outcome, PartitionProcessor
from streamrec.quality.clicks import NOT_SCORED, RankLog

TOLERANCE = 0.05  # recovered: a window's recall at least (1 - TOLERANCE) x the level before the drift
WINDOW = 1000  # clicks per window, or a tenth of the clicks before the drift where that is fewer
LEVEL_WINDOWS = 3  # the level before the drift: recall over this many windows just before it
SHOWN_AFTER = 6  # windows after the drift in the table and the JSON
MIN_WINDOW = 20  # fewer clicks per window than this before the drift: no drift section


class DriftClicks:
    """Replay observer: the stream position of every click protocol (a) logs (the same clicks as
    ``NextClicks``, in the same order) and of the first event at or after the drift. Positions are
    the processor's (events applied before), the ones its drift detections are recorded in."""

    def __init__(self, drift_ts_ms: int) -> None:
        self.drift_ts_ms = drift_ts_ms
        self.positions = array("q")
        self.drift_event: int | None = None
        self._pending: int | None = None

    def before(self, proc: PartitionProcessor, event: Event) -> None:
        if self.drift_event is None and event.ts >= self.drift_ts_ms:
            self.drift_event = proc.counts["applied"]
        self._pending = proc.counts["applied"] if event.type == "click" and proc.accepts(event) else None

    def after(self, proc: PartitionProcessor, event: Event, outcome: Outcome) -> None:
        if self._pending is not None and outcome is Outcome.APPLIED:
            self.positions.append(self._pending)


def drift_summary(log: RankLog, marks: DriftClicks, proc: PartitionProcessor, k: int) -> dict[str, Any] | None:
    """Every ranker's windows and recovery, every learner's detector; None when the log has too
    few clicks before the drift (or none after it) to measure either."""
    positions = np.frombuffer(marks.positions, dtype=np.int64)
    if len(positions) != len(log):
        raise ValueError(f"{len(positions)} click positions for {len(log)} logged clicks: observers disagree")
    if marks.drift_event is None:
        return None
    at = int(np.searchsorted(positions, marks.drift_event))
    window = min(WINDOW, at // 10)
    if window < MIN_WINDOW or len(positions) - at < window:
        return None
    rankers = {
        name: _recovery(*_asked(log, name, k, positions), marks.drift_event, window)
        for name in log.ranks
        if not name.startswith("serving, blend")
    }
    return {
        "drift_event": marks.drift_event,
        "drift_click": at,
        "window_clicks": window,
        "tolerance": TOLERANCE,
        "rankers": rankers,
        "detectors": {name: _detector(m.detections, positions, marks.drift_event) for name, m in proc.drift.items()},
    }


def _asked(log: RankLog, name: str, k: int, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hits, positions) of the clicks ``name`` was asked about."""
    ranks = np.frombuffer(log.ranks[name], dtype=np.int32)
    asked = ranks != NOT_SCORED
    return ((ranks >= 0) & (ranks < k))[asked].astype(np.float64), positions[asked]


def _recovery(hits: np.ndarray, positions: np.ndarray, drift_event: int, window: int) -> dict[str, Any]:
    """Recall in windows of ``window`` clicks around the drift, and the first window wholly after
    it (sliding one click at a time) whose recall is back to (1 - TOLERANCE) x the level before."""
    at = int(np.searchsorted(positions, drift_event))
    if at < LEVEL_WINDOWS * window or len(hits) - at < window:
        return {"level_before": None, "windows": [], "recovery_clicks": None, "recovery_events": None}
    level = float(hits[at - LEVEL_WINDOWS * window : at].mean())
    blocks = range(-LEVEL_WINDOWS, SHOWN_AFTER)
    windows = [hits[at + j * window : at + (j + 1) * window] for j in blocks]
    sums = np.concatenate([[0.0], np.cumsum(hits)])
    ends = np.arange(at + window, len(hits) + 1)  # window [end - window, end), wholly after the drift
    back = np.flatnonzero((sums[ends] - sums[ends - window]) / window >= (1 - TOLERANCE) * level)
    end = int(ends[back[0]]) if len(back) else None
    return {
        "level_before": round(level, 4),
        "windows": [round(float(w.mean()), 4) if len(w) == window else None for w in windows],
        "first_window": blocks.start,
        "level_at_end": round(float(hits[-LEVEL_WINDOWS * window :].mean()), 4),
        "recovery_clicks": end - at if end is not None else None,
        "recovery_events": int(positions[end - 1]) - drift_event if end is not None else None,
    }


def _detector(detections: list[int], positions: np.ndarray, drift_event: int) -> dict[str, Any]:
    """False alarms before the drift; detections after it and the first one's delay in events and
    in protocol (a)'s clicks; every detection relative to the drift (events)."""
    after = [d for d in detections if d >= drift_event]
    first = after[0] if after else None
    at = int(np.searchsorted(positions, drift_event))
    return {
        "false_alarms": len(detections) - len(after),
        "detections_after": len(after),
        "first_delay_events": first - drift_event if first is not None else None,
        "first_delay_clicks": int(np.searchsorted(positions, first)) - at if first is not None else None,
        "detections": [d - drift_event for d in detections],
    }
