"""One partition's pipeline: lateness -> de-duplication -> test -> learn -> state.

The order inside :meth:`PartitionProcessor.process` is the prequential contract: every learner
is scored on an event using only what came before it, then learns from it, and only then does the
feature state absorb it. The whole object is deterministic given its input, and
``to_state``/``from_state`` round-trip it exactly (the crash tests compare fingerprints). One
exception: the serving blend (``blend``) also learns from the serving scorer's candidates, which
depend on the model served at the time and on item lists rebuilt on a timer; a worker that does not
serve leaves it untouched.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import msgspec

from stream.config import Config
from stream.drift import DriftMonitor
from stream.evaluation.prequential import LogLoss, PairwiseScore, RankingScore, ServedClicks
from stream.events import EVENT_TYPES, Event
from stream.learners.base import rank_of
from stream.learners.blend import OnlineBlend
from stream.learners.click_model import POSITION, ClickModel
from stream.learners.exposure import ExposureRanker
from stream.learners.item_knn import ItemKNN
from stream.learners.mf import IncrementalMF
from stream.learners.popularity import Popularity
from stream.state.dedup import DedupWindow
from stream.state.features import FeatureState, Interaction

SNAPSHOT_FORMAT = 1
LEARNERS = ("popularity", "item_knn", "isgd_mf", "exposure", "click_model")
# Learners with a drift detector: popularity and the exposure ranker are counts that nothing retrains.
DRIFT_MONITORED = ("item_knn", "isgd_mf", "click_model")


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    LATE = "late"


DriftHook = Callable[[str, int, Event], None]


class PartitionProcessor:
    def __init__(self, cfg: Config, k: int = 10, on_drift: DriftHook | None = None) -> None:
        self.cfg = cfg
        self.k = k
        self.on_drift = on_drift
        self._lateness_ms = cfg.events.allowed_lateness_ms
        self._every = cfg.worker.prequential_every
        lc = cfg.learners
        self.state = FeatureState(cfg.state, cfg.serving.exclude_seen)
        self.dedup = DedupWindow(cfg.state.dedup_window)
        self.popularity = Popularity(self.state)
        self.knn = ItemKNN(self.state, self.popularity)
        self.mf = IncrementalMF(
            self.state, lc.mf_factors, lc.mf_learning_rate, lc.mf_regularisation, lc.mf_negatives, lc.seed
        )
        self.exposure = ExposureRanker(self.state)
        self.click_model = ClickModel(
            self.state,
            self.popularity,
            self.knn,
            self.mf,
            self.exposure,
            lc.click_learning_rate,
            lc.click_l2,
            lc.click_negative_rate,
            lc.click_sampled_negatives,
            lc.candidates_per_source,
            optimiser=lc.click_optimiser,
            standardise=lc.click_standardise,
        )
        self.rankers = {m.name: m for m in (self.popularity, self.knn, self.mf, self.exposure, self.click_model)}
        # The serving path's blend weights: partition state, snapshotted with it, but learned by the
        # serving scorer (it alone computes the candidates), before each click this processor applies.
        self.blend = OnlineBlend(
            msgspec.structs.asdict(cfg.serving.blend), lc.blend_learning_rate, lc.blend_sample_rate
        )
        self.scores = {name: RankingScore(k) for name in self.rankers}
        self.served = ServedClicks()
        # Each ranker's rank of the latest tested click (None: a miss by the served rule), for
        # harnesses that keep per-click records; not state, so not in snapshots.
        self.last_ranks: dict[str, int | None] = {}
        # Every ranker's pairwise test on every click (what the drift monitors watch); the click
        # model is also scored by its log-loss on each example it learns.
        self.pairwise = {name: PairwiseScore() for name in self.rankers}
        self.click_logloss = LogLoss()
        self.drift = {name: DriftMonitor(lc.drift_threshold, lc.drift_delta) for name in DRIFT_MONITORED}
        self.counts = dict.fromkeys(["applied", "duplicate", "late", *EVENT_TYPES], 0)

    def _late(self, event: Event) -> bool:
        return event.ts < self.state.max_ts_ms - self._lateness_ms

    def accepts(self, event: Event) -> bool:
        """Would :meth:`process` apply ``event`` now (neither late nor a duplicate)? Changes nothing."""
        return not self._late(event) and event.event_id not in self.dedup

    def process(self, event: Event) -> Outcome:
        counts, state = self.counts, self.state
        if self._late(event):
            counts["late"] += 1
            return Outcome.LATE
        if self.dedup.seen_before(event.event_id):
            counts["duplicate"] += 1
            return Outcome.DUPLICATE
        known = state.n_items  # the catalogue a request could have been served from
        x = state.resolve(event)
        self.last_ranks = {}
        click_model = self.click_model
        examples = click_model.examples(x)  # built from the state before the event, like every test
        click = x.type == "click"
        if click:
            # Its logged position dropped: the other item of the pairwise test has none.
            features = list(examples[0][0])
            features[POSITION] = 0.0
            self._test_rankers(x, known, features)
        # The pointwise learner is scored on each of its training examples, then learns it.
        for features, label, weight in examples:
            self.click_logloss.update(click_model.predict_proba_one(features), label, weight)
            click_model.model.learn_one(features, label, w=weight)
        if click:
            self.mf.learn_one(x)
            self.popularity.learn_one(x)
        state.update(x)
        counts["applied"] += 1
        counts[x.type] += 1
        return Outcome.APPLIED

    def _test_rankers(self, x: Interaction, known: int, clicked_features: list[float]) -> None:
        """Before anything learns from click ``x``: the pairwise test on every click (its loss is
        what the drift monitors watch), and the ranking test (Recall/NDCG) on
        every ``prequential_every``-th, over the ``known`` items the catalogue held before the
        click, by the served rule. ``clicked_features``: the click model's features of the click,
        already built for its training example."""
        n_items = self.state.n_items
        if n_items > 1:
            other = (zlib.crc32(x.event.event_id.encode()) * 2654435761 + 1) % n_items
            other = other if other != x.item else (other + 1) % n_items
            for name, pair in self.pairwise.items():
                learner = self.rankers[name]
                clicked = (
                    self.click_model.score_features(x.user, x.item, clicked_features)
                    if learner is self.click_model
                    else learner.score_one(x.user, x.item)
                )
                self._watch(name, pair.update(clicked, learner.score_one(x.user, other)), x)
        if self.counts["click"] % self._every:
            return
        position = self.counts["applied"]
        excluded = self.state.excluded_items(x.user)
        self.served.update(x.item in self.state.seen.get(x.user, ()), x.item >= known, known)
        for name, learner in self.rankers.items():
            rank = self.last_ranks[name] = rank_of(learner.score_catalogue(x.user)[:known], x.item, excluded)
            self.scores[name].update(rank, position)

    def _watch(self, name: str, loss: float, x: Interaction) -> None:
        """Feed learner ``name``'s drift monitor a loss measured on event ``x`` (every event of its
        kind, whatever ``prequential_every`` samples: docs/explanation/learners.md, "Drift")."""
        monitor = self.drift.get(name)
        position = self.counts["applied"]
        if monitor is not None and monitor.update(loss, position) and self.on_drift:
            self.on_drift(name, position, x.event)

    # -- snapshots -----------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            "format": SNAPSHOT_FORMAT,
            "state": self.state.to_state(),
            "dedup": self.dedup.to_state(),
            "learners": {name: learner.to_state() for name, learner in self.rankers.items()},
            "scores": {name: s.to_state() for name, s in self.scores.items()},
            "served": self.served.to_state(),
            "pairwise": {name: s.to_state() for name, s in self.pairwise.items()},
            "click_logloss": self.click_logloss.to_state(),
            "drift": {name: m.to_state() for name, m in self.drift.items()},
            "blend": self.blend.to_state(),
            "counts": dict(self.counts),
        }

    @classmethod
    def from_state(
        cls, cfg: Config, s: dict[str, Any], k: int = 10, on_drift: DriftHook | None = None
    ) -> PartitionProcessor:
        if s.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"snapshot format {s.get('format')!r} is not {SNAPSHOT_FORMAT}")
        proc = cls(cfg, k, on_drift)
        proc.state = FeatureState.from_state(cfg.state, s["state"], cfg.serving.exclude_seen)
        for learner in proc.rankers.values():  # learners hold a reference to the state
            learner.state = proc.state
        proc.dedup = DedupWindow.from_state(s["dedup"])
        # A learner added since the snapshot was taken (absent from it) starts afresh.
        for name, learner in proc.rankers.items():
            if name in s["learners"]:
                learner.load_state(s["learners"][name])
        for name, score in proc.scores.items():
            if name in s["scores"]:
                score.load_state(s["scores"][name])
        if "served" in s:  # a snapshot from before the tally was kept starts it at zero
            proc.served.load_state(s["served"])
        for name, pairwise in proc.pairwise.items():
            if name in s["pairwise"]:
                pairwise.load_state(s["pairwise"][name])
        proc.click_logloss.load_state(s["click_logloss"])
        for name, monitor in proc.drift.items():
            if name in s["drift"]:
                monitor.load_state(s["drift"][name])
        # A learning blend goes on from its snapshot; a fixed one (learning rate 0) uses the weights
        # configured now, as does a snapshot written before the blend was learned.
        if "blend" in s and proc.blend.learning_rate:
            proc.blend.load_state(s["blend"])
        proc.counts = dict(s["counts"])
        return proc

    def fingerprint(self) -> str:
        """A digest of everything the processor holds: equal digests mean identical state."""
        return hashlib.sha256(msgspec.msgpack.encode(self.to_state())).hexdigest()
