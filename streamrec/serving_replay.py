"""``streamrec eval prequential --serving``: the prequential replay, asking the serving path too.

Before each click is applied, the scorer -- candidates, the current student, the blend -- is asked
for the user's top-k, exactly as a live request would be; the click is a hit if its item is there.
Then the click is applied as usual, and every stream-only learner is scored on it in the same run
(``worker.prequential_every``), so the comparison is like for like.

Every ``retrain_every`` events the student is retrained on everything replayed so far (teacher
warm-started from the previous version, registered and promoted) and loaded as a live scorer would
load it. Training pauses the replay, so each model serves from the event it was trained up to: a
live system would serve it a training run later (minutes), which this replay does not charge.

The serving path ranks with the blend it learns online (``stream.learners.blend``): each click is
first ranked under the current weights, then teaches them. For comparison the same candidates and
signals are also ranked under each fixed blend of ``BLEND_GRID``; the best fixed blend is chosen on
the first ``select_clicks`` clicks only, and every ranker -- the learned blend, the chosen fixed one,
each stream-only learner -- is reported on the clicks after.

Is the serving path really ahead? Its lead over the best stream learner is measured pairwise on the
same clicks, with a bootstrap interval that resamples users (``stream.evaluation.paired``).
"""

from __future__ import annotations

import tempfile
import time
from array import array
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from serving.model_updates import ModelLoader
from serving.scorer import Scorer, rank_of_item
from stream.config import BlendWeights, Config
from stream.evaluation.paired import Lead, paired_lead
from stream.evaluation.replay import served_rule, summarise
from stream.events import Event
from stream.learners.blend import OnlineBlend
from stream.processor import Outcome, PartitionProcessor

Log = Callable[[str], None]
BLEND_GRID = [BlendWeights(student=1.0, item_knn=knn, isgd_mf=mf, popularity=pop)
              for knn in (0.0, 0.25, 0.5, 1.0, 2.0, 4.0) for mf in (0.0, 0.25) for pop in (0.0, 0.25)]


class ClickLog:
    """Per scored click: who clicked, the serving path's rank under every blend, each learner's hit.

    Kept per click (not as running totals) so that rankers can be compared pairwise on the same
    clicks, and any part of the replay -- selection, after -- summarised after the fact.
    """

    def __init__(self, blends: int, learners: Iterable[str]) -> None:
        self._user_index: dict[str, int] = {}
        self.users = array("q")
        self.ranks = [array("i") for _ in range(blends)]  # -1: the item was not a candidate
        self.learner_hits = {name: array("b") for name in learners}  # -1: not scored on this click

    def add(self, user_id: str, ranks: list[int | None], learner_hits: dict[str, int]) -> None:
        self.users.append(self._user_index.setdefault(user_id, len(self._user_index)))
        for column, rank in zip(self.ranks, ranks):
            column.append(-1 if rank is None else rank)
        for name, hit in learner_hits.items():
            self.learner_hits[name].append(hit)

    def __len__(self) -> int:
        return len(self.users)

    def serving_hits(self, blend_index: int, k: int) -> np.ndarray:
        """(clicks,) bool: the serving path under that blend had the clicked item in its top k."""
        ranks = np.frombuffer(self.ranks[blend_index], dtype=np.int32)
        return (ranks >= 0) & (ranks < k)

    def figures(self, blend_index: int, k: int, part: slice = slice(None)) -> dict[str, Any]:
        ranks = np.frombuffer(self.ranks[blend_index], dtype=np.int32)[part]
        hit = (ranks >= 0) & (ranks < k)
        n = len(ranks)
        return {f"recall@{k}": round(float(hit.mean()), 4) if n else None,
                f"ndcg@{k}": round(float((1.0 / np.log2(ranks[hit] + 2.0)).sum() / n), 4) if n else None,
                "scored_clicks": n}

    def lead(self, blend_index: int, learner: str, k: int, part: slice = slice(None)) -> Lead:
        """Serving (that blend) minus the learner, paired on the clicks where both were scored."""
        theirs = np.frombuffer(self.learner_hits[learner], dtype=np.int8)[part]
        both = theirs >= 0
        return paired_lead(self.serving_hits(blend_index, k)[part][both], theirs[both] == 1,
                           np.frombuffer(self.users, dtype=np.int64)[part][both])


def replay_with_serving(events: Iterable[Event], cfg: Config, retrain_every: int, k: int = 10,
                        select_clicks: int = 50_000, registry_root: Path | None = None, log: Log = print,
                        progress: Callable[[int, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    # One second of wall time spans thousands of replayed events: item-side lists are rebuilt for
    # every request instead, as fresh as a live system's (rebuilt each second) are in stream time.
    cfg = msgspec.structs.replace(cfg, serving=msgspec.structs.replace(cfg.serving, item_lists_refresh_s=1e-9))
    # Every retrained student is promoted: the gate compares validation figures measured on
    # different windows (each version's own), which says little about which model is better now.
    cfg = msgspec.structs.replace(cfg, registry=msgspec.structs.replace(cfg.registry, gate_tolerance=1.0))
    # Index 0 (None): the partition's learned blend; then the fixed blends of the grid.
    blends = [None, *(OnlineBlend(msgspec.structs.asdict(w), learning_rate=0.0) for w in BLEND_GRID)]
    with tempfile.TemporaryDirectory(prefix="streamrec-replay-") as tmp:
        root = registry_root or Path(tmp) / "models"
        proc = PartitionProcessor(cfg, k)
        scorer = Scorer(cfg.serving)
        loader = ModelLoader(scorer, cfg.serving.threads)
        clicks = ClickLog(len(blends), proc.scores)
        fallbacks: dict[str, int] = {}
        models: list[dict[str, Any]] = []
        history: list[Event] = []
        started = time.perf_counter()
        for n, event in enumerate(events, start=1):
            if n > 1 and (n - 1) % retrain_every == 0:  # trained on everything before this event
                models.append(_retrain(cfg, history, root, loader, n - 1, log))
            ranks = None
            if event.type == "click":
                scored = scorer.score(proc, event.user_id)
                item = proc.state.items.get(event.item_id)
                ranks = [rank_of_item((w or proc.blend).score(scored.signals), scored.items, item)  # None: learned
                         if len(scored.items) and item is not None else None for w in blends]
                if scored.fallback:
                    fallbacks[scored.fallback] = fallbacks.get(scored.fallback, 0) + 1
                before = {name: (s.hits, s.n) for name, s in proc.scores.items()}
                # As a serving worker does: the current weights ranked the click, now it teaches them.
                if ranks[0] is not None and proc.accepts(event) and proc.blend.samples(event.event_id):
                    proc.blend.learn_one(scored.signals, int(np.flatnonzero(scored.items == item)[0]))
            if proc.process(event) is Outcome.APPLIED:
                history.append(event)
                if ranks is not None:
                    clicks.add(event.user_id, ranks, {name: (s.hits > before[name][0]) if s.n > before[name][1] else -1
                                                      for name, s in proc.scores.items()})
            if progress and n % 10_000 == 0:
                progress(n, {**summarise([proc], k), "serving": clicks.figures(0, k)})
        result = summarise([proc], k)
        best = max(result, key=lambda name: result[name][f"recall@{k}"] or 0)
        overall = clicks.figures(0, k)
        result["serving"] = {**overall,
                             "clicks_whose_item_was_a_candidate": round(sum(r >= 0 for r in clicks.ranks[0]) / max(len(clicks), 1), 4),
                             "fallbacks": fallbacks, "models": models, "best_stream_learner": best,
                             f"recall@{k}_over_best_stream_learner": round(
                                 overall[f"recall@{k}"] / max(result[best][f"recall@{k}"], 1e-12), 4),
                             f"recall@{k}_lead_over_best_stream_learner": clicks.lead(0, best, k).to_dict()}
        result["_served_rule"] = served_rule([proc])
        result["blend_selection"] = _selection(clicks, select_clicks, k)
        result["serving"]["learned_blend"] = {name: round(w, 4) for name, w in proc.blend.weights.items()}
        result["_run"] = {"events": n, "seconds": round(time.perf_counter() - started, 1),
                          "retrain_every": retrain_every, "blend_start": msgspec.to_builtins(cfg.serving.blend),
                          "blend_learning_rate": cfg.learners.blend_learning_rate,
                          "blend_sample_rate": cfg.learners.blend_sample_rate}
        return result


def _selection(clicks: ClickLog, select_clicks: int, k: int) -> dict[str, Any]:
    """The blend chosen on the first ``select_clicks`` clicks, and every ranker on the clicks after.

    The comparison that matters is on the clicks after: neither the chosen blend nor the best
    learner there was picked by looking at them.
    """
    selection, after = slice(0, select_clicks), slice(select_clicks, None)
    chosen = 1 + max(range(len(BLEND_GRID)), key=lambda i: clicks.serving_hits(1 + i, k)[selection].sum())
    recall = {"serving, learned blend": clicks.figures(0, k, after)[f"recall@{k}"],
              "serving, chosen blend": clicks.figures(chosen, k, after)[f"recall@{k}"]}
    for name, column in clicks.learner_hits.items():
        hits = np.frombuffer(column, dtype=np.int8)[after]
        recall[name] = round(float((hits == 1).sum() / (hits >= 0).sum()), 4) if (hits >= 0).any() else None
    learners = [name for name in clicks.learner_hits if recall[name] is not None]
    best = max(learners, key=lambda name: recall[name]) if learners else None
    return {"selection_clicks": select_clicks, "after_clicks": max(len(clicks) - select_clicks, 0),
            "chosen": msgspec.to_builtins(BLEND_GRID[chosen - 1]),
            f"chosen_recall@{k}_on_selection": clicks.figures(chosen, k, selection)[f"recall@{k}"],
            f"learned_recall@{k}_on_selection": clicks.figures(0, k, selection)[f"recall@{k}"],
            f"recall@{k}_after_selection": recall,
            "best_stream_learner_after_selection": best,
            f"recall@{k}_lead_after_selection": None if best is None else {
                "learned blend": clicks.lead(0, best, k, after).to_dict(),
                "chosen blend": clicks.lead(chosen, best, k, after).to_dict()}}


def _retrain(cfg: Config, history: list[Event], root: Path, loader: ModelLoader, at_event: int,
             log: Log) -> dict[str, Any]:
    from offline.pipeline import retrain_served_student

    log(f"event {at_event:,}: retraining on {len(history):,} events")
    report = retrain_served_student(cfg, history, root, log=log)
    loaded = loader.load_current(root)
    return {"after_event": at_event, "version": report["registry"]["version"],
            "promoted": report["registry"]["promoted"], "serving": loader.scorer.version, "loaded": loaded,
            "train_seconds": report["_run"]["seconds"]}

