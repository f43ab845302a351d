"""One prequential replay that every protocol watches: events in order through one partition's
processor, with observers asked before and after each event.

Order per event (the test-then-learn contract, as a serving worker keeps it):

1. the serving path retrains if it is due (``ServingPath``: everything applied so far);
2. every observer's ``before``: rankers are asked about the event using only what came before it
   (and the serving blend, as the worker does, takes its step on a click);
3. the processor applies the event (its own learners are tested on a click first);
4. every observer's ``after``, with the outcome (a duplicate or late event taught nothing and is
   not counted).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import msgspec
import numpy as np

from stream.config import Config
from stream.events import Event
from stream.learners.base import rank_of
from stream.learners.blend import OnlineBlend
from stream.processor import Outcome, PartitionProcessor
from streamrec.quality.clicks import RankLog
from streamrec.quality.conversions import ConversionLog

log = logging.getLogger(__name__)


class Observer(Protocol):
    def before(self, proc: PartitionProcessor, event: Event) -> None: ...

    def after(self, proc: PartitionProcessor, event: Event, outcome: Outcome) -> None: ...


class CatalogueScorer(Protocol):
    """A ranker outside the processor (a baseline, the oracle): scores of the ``known`` items."""

    def scores(self, proc: PartitionProcessor, event: Event, known: int) -> np.ndarray: ...


def replay(
    events: Iterable[Event],
    cfg: Config,
    observers: Sequence[Observer],
    k: int = 10,
    progress: Callable[[int, PartitionProcessor], None] | None = None,
) -> dict[str, Any]:
    """Run the events through a fresh processor; what it measured is in the observers."""
    proc = PartitionProcessor(cfg, k)
    started = time.perf_counter()
    n = 0
    for n, event in enumerate(events, start=1):
        for o in observers:
            o.before(proc, event)
        outcome = proc.process(event)
        for o in observers:
            o.after(proc, event, outcome)
        if progress and n % 10_000 == 0:
            progress(n, proc)
    return {"events": n, "seconds": round(time.perf_counter() - started, 1), "processor": proc}


class ServingPath:
    """The served ranking in a replay: candidates, the current student, the learned blend; the
    student retrained on everything applied so far and loaded as a live scorer would load it, on a
    live trainer's triggers (``offline.schedule``): every ``retrain_every`` events (0: never, so the
    learners' blend serves alone, as before a first model) and, if ``on_drift``, at the first event
    after a learner's drift detector fired. Training pauses the replay: each model serves from the
    event it was trained up to, where a live system would serve it a training run later.

    ``grid``: fixed blends also ranked on every click, for comparison with the learned one.
    """

    def __init__(
        self,
        cfg: Config,
        retrain_every: int,
        registry_root: Path,
        grid: Sequence[OnlineBlend] = (),
        on_drift: bool = False,
    ) -> None:
        from serving.model_updates import ModelLoader
        from serving.scorer import Scorer

        self.cfg = cfg
        self.retrain_every = retrain_every
        self.on_drift = on_drift
        self.root = registry_root
        self.grid = list(grid)
        self.scorer = Scorer(cfg.serving)
        self.loader = ModelLoader(self.scorer, cfg.serving.threads)
        self.history: list[Event] = []
        self.models: list[dict[str, Any]] = []
        self.fallbacks: dict[str, int] = {}
        self.candidate_hits = 0
        self._seen = 0
        self._trained_at = 0  # events seen when the student was last retrained
        self._detections = 0  # the processor's drift detections then

    @staticmethod
    def replay_config(cfg: Config) -> Config:
        """The settings a replay needs to stand for a live system. One second of wall time spans
        thousands of replayed events, so item-side lists are rebuilt for every request (as fresh as
        a live system's, rebuilt each second, are in stream time); and every retrained student is
        promoted, since the gate compares validation figures of different windows."""
        cfg = msgspec.structs.replace(cfg, serving=msgspec.structs.replace(cfg.serving, item_lists_refresh_s=1e-9))
        return msgspec.structs.replace(cfg, registry=msgspec.structs.replace(cfg.registry, gate_tolerance=1.0))

    def before(self, proc: PartitionProcessor, event: Event) -> None:
        detections = sum(len(m.detections) for m in proc.drift.values()) if self.on_drift else 0
        why = self._due(detections)
        if why:
            self._trained_at, self._detections = self._seen, detections
            self._retrain(why)
        self._seen += 1

    def _due(self, detections: int) -> str | None:
        """Why the student is retrained before this event, or None, given the processor's drift
        detections so far. As a live trainer does, it counts the events since the last retraining;
        its time trigger has no counterpart (a replayed second spans thousands of events)."""
        if not (self.retrain_every and self._seen):
            return None
        if self.on_drift and detections > self._detections:
            return "drift"
        if self._seen - self._trained_at >= self.retrain_every:
            return "events"
        return None

    def after(self, proc: PartitionProcessor, event: Event, outcome: Outcome) -> None:
        if outcome is Outcome.APPLIED:
            self.history.append(event)

    def ranks(self, proc: PartitionProcessor, event: Event, item: int | None) -> dict[str, int | None]:
        """The click's rank under the learned blend (``serving``) and each grid blend; then the
        learned blend takes its step, as a serving worker's does before it applies the click."""
        from serving.scorer import rank_of_item

        scored = self.scorer.score(proc, event.user_id)
        if scored.fallback:
            self.fallbacks[scored.fallback] = self.fallbacks.get(scored.fallback, 0) + 1
        at = np.flatnonzero(scored.items == item) if item is not None else np.empty(0, np.int64)
        blends = {"serving": proc.blend, **{f"serving, blend {i}": b for i, b in enumerate(self.grid)}}
        if not len(at):
            return dict.fromkeys(blends)
        self.candidate_hits += 1
        ranks = {name: rank_of_item(b.score(scored.signals), scored.items, item) for name, b in blends.items()}
        if proc.accepts(event) and proc.blend.samples(event.event_id):
            proc.blend.learn_one(scored.signals, int(at[0]))
        return ranks

    def _retrain(self, why: str) -> None:
        if self.cfg.train.model == "sequence":
            from offline.sequence_pipeline import retrain
        else:
            from offline.pipeline import retrain_served_student as retrain

        log.info("event %s: retraining the student on %s events (%s)", f"{self._seen:,}", f"{len(self.history):,}", why)
        report = retrain(self.cfg, self.history, self.root)
        loaded = self.loader.load_current(self.root)
        self.models.append(
            {
                "after_event": self._seen,
                "trigger": why,
                "version": report["registry"]["version"],
                "loaded": loaded,
                "serving": self.scorer.version,
                "train_seconds": report["_run"]["seconds"],
                "model": report["_run"]["model"],
            }
        )

    def summary(self, proc: PartitionProcessor, clicks: int) -> dict[str, Any]:
        return {
            "models": self.models,
            "fallbacks": self.fallbacks,
            "clicks_whose_item_was_a_candidate": round(self.candidate_hits / max(clicks, 1), 4),
            "learned_blend": {name: round(w, 4) for name, w in proc.blend.weights.items()},
        }


class NextClicks:
    """Protocol (a): before each click, every ranker ranks the served set (the catalogue known
    before the click, less the served rule's exclusions); the ranks are kept per click in ``log``.
    The processor's own learners are read from its test of the same click (``last_ranks``). Each
    conversion is matched to its click in ``conversions``."""

    def __init__(self, rankers: dict[str, CatalogueScorer], serving: ServingPath | None = None) -> None:
        self.rankers = rankers
        self.serving = serving
        self.log = RankLog()
        self.conversions = ConversionLog()  # each conversion credited with its click's ranks
        self._pending: dict[str, int | None] | None = None

    def before(self, proc: PartitionProcessor, event: Event) -> None:
        self._pending = None
        if event.type != "click" or not proc.accepts(event):
            return
        state = proc.state
        known, user, item = state.n_items, state.users.get(event.user_id), state.items.get(event.item_id)
        excluded = state.excluded_items(user) if user is not None else []
        ranks: dict[str, int | None] = {
            name: None if item is None else rank_of(r.scores(proc, event, known), item, excluded)
            for name, r in self.rankers.items()
        }
        if self.serving is not None:
            ranks.update(self.serving.ranks(proc, event, item))
        self._pending = ranks

    def after(self, proc: PartitionProcessor, event: Event, outcome: Outcome) -> None:
        if self._pending is not None and outcome is Outcome.APPLIED:
            self.log.add(event.user_id, {**self._pending, **proc.last_ranks})
            self.conversions.click(event, len(self.log) - 1)
        elif event.type == "conversion" and outcome is Outcome.APPLIED:
            self.conversions.conversion(event, len(self.log))
