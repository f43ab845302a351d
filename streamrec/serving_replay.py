"""``streamrec eval prequential --serving``: the prequential replay, asking the serving path too.

Before each click is applied, the scorer -- candidates, the current student, the blend -- is asked
for the user's top-k, exactly as a live request would be; the click is a hit if its item is there.
Then the click is applied as usual, and every stream-only learner is scored on it in the same run
(``worker.prequential_every``), so the comparison is like for like.

Every ``retrain_every`` events the student is retrained on everything replayed so far (teacher
warm-started from the previous version, registered and promoted) and loaded as a live scorer would
load it. Training pauses the replay, so each model serves from the event it was trained up to: a
live system would serve it a training run later (minutes), which this replay does not charge.

Blend selection without peeking: the same candidates and signals are also ranked under each blend
of ``BLEND_GRID``; a blend is chosen on the first ``select_clicks`` clicks only, and every ranker --
the configured blend, the chosen one, each stream-only learner -- is reported on the clicks after.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec

from serving.model_updates import ModelLoader
from serving.scorer import Scorer, blend, rank_of_item
from stream.config import BlendWeights, Config
from stream.evaluation.prequential import RankingScore
from stream.evaluation.replay import summarise
from stream.events import Event
from stream.processor import Outcome, PartitionProcessor

Log = Callable[[str], None]
BLEND_GRID = [BlendWeights(student=1.0, item_knn=knn, isgd_mf=mf, popularity=pop)
              for knn in (0.0, 0.25, 0.5, 1.0, 2.0, 4.0) for mf in (0.0, 0.25) for pop in (0.0, 0.25)]


class Split:
    """Running figures of one ranker on the selection clicks and on the clicks after them."""

    def __init__(self, k: int) -> None:
        self.selection, self.after = RankingScore(k), RankingScore(k)

    def update(self, rank: int | None, n: int, selecting: bool) -> None:
        (self.selection if selecting else self.after).update(rank, n)

    def figures(self, k: int) -> dict[str, Any]:
        """Recall and NDCG over every click so far (both parts)."""
        n = self.selection.n + self.after.n
        return {f"recall@{k}": round((self.selection.hits + self.after.hits) / n, 4) if n else None,
                f"ndcg@{k}": round((self.selection.ndcg + self.after.ndcg) / n, 4) if n else None,
                "scored_clicks": n}


def replay_with_serving(events: Iterable[Event], cfg: Config, retrain_every: int, k: int = 10,
                        select_clicks: int = 50_000, registry_root: Path | None = None, log: Log = print,
                        progress: Callable[[int, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    # One second of wall time spans thousands of replayed events: item-side lists are rebuilt for
    # every request instead, as fresh as a live system's (rebuilt each second) are in stream time.
    cfg = msgspec.structs.replace(cfg, serving=msgspec.structs.replace(cfg.serving, item_lists_refresh_s=1e-9))
    # Every retrained student is promoted: the gate compares validation figures measured on
    # different windows (each version's own), which says little about which model is better now.
    cfg = msgspec.structs.replace(cfg, registry=msgspec.structs.replace(cfg.registry, gate_tolerance=1.0))
    with tempfile.TemporaryDirectory(prefix="streamrec-replay-") as tmp:
        root = registry_root or Path(tmp) / "models"
        proc = PartitionProcessor(cfg, k)
        scorer = Scorer(cfg.serving)
        loader = ModelLoader(scorer, cfg.serving.threads)
        configured, grid = Split(k), [Split(k) for _ in BLEND_GRID]
        at_selection_end: dict[str, tuple[int, int]] = {}
        in_candidates = clicks = 0
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
                ranks = [rank_of_item(blend(scored.signals, w), scored.items, item) if len(scored.items) and
                         item is not None else None for w in (cfg.serving.blend, *BLEND_GRID)]
                if scored.fallback:
                    fallbacks[scored.fallback] = fallbacks.get(scored.fallback, 0) + 1
            if proc.process(event) is Outcome.APPLIED:
                history.append(event)
                if ranks is not None:
                    clicks += 1
                    selecting = clicks <= select_clicks
                    if clicks == select_clicks + 1:
                        at_selection_end = {name: (s.hits, s.n) for name, s in proc.scores.items()}
                    in_candidates += ranks[0] is not None
                    configured.update(ranks[0], n, selecting)
                    for split, rank in zip(grid, ranks[1:]):
                        split.update(rank, n, selecting)
            if progress and n % 10_000 == 0:
                progress(n, {**summarise([proc], k), "serving": configured.figures(k)})
        result = summarise([proc], k)
        result["serving"] = {**configured.figures(k), "clicks_whose_item_was_a_candidate": round(in_candidates / max(clicks, 1), 4),
                             "fallbacks": fallbacks, "models": models}
        best = max((name for name in result if name != "serving"), key=lambda name: result[name][f"recall@{k}"] or 0)
        result["serving"]["best_stream_learner"] = best
        result["serving"][f"recall@{k}_over_best_stream_learner"] = round(
            result["serving"][f"recall@{k}"] / max(result[best][f"recall@{k}"], 1e-12), 4)
        result["blend_selection"] = _selection(proc, configured, grid, at_selection_end, select_clicks, k)
        result["_run"] = {"events": n, "seconds": round(time.perf_counter() - started, 1),
                          "retrain_every": retrain_every, "blend": msgspec.to_builtins(cfg.serving.blend)}
        return result


def _selection(proc: PartitionProcessor, configured: Split, grid: list[Split],
               at_selection_end: dict[str, tuple[int, int]], select_clicks: int, k: int) -> dict[str, Any]:
    """The blend chosen on the selection clicks, and every ranker's recall on the clicks after them."""
    def recall(s: RankingScore) -> float | None:
        return round(s.hits / s.n, 4) if s.n else None

    chosen = max(range(len(grid)), key=lambda i: grid[i].selection.hits)
    after = {"serving, configured blend": recall(configured.after), "serving, chosen blend": recall(grid[chosen].after)}
    for name, score in proc.scores.items():
        hits, n = at_selection_end.get(name, (score.hits, score.n))
        after[name] = round((score.hits - hits) / (score.n - n), 4) if score.n > n else None
    return {"selection_clicks": select_clicks, "after_clicks": grid[chosen].after.n,
            "chosen": msgspec.to_builtins(BLEND_GRID[chosen]),
            f"chosen_recall@{k}_on_selection": recall(grid[chosen].selection),
            f"configured_recall@{k}_on_selection": recall(configured.selection),
            f"recall@{k}_after_selection": after}


def _retrain(cfg: Config, history: list[Event], root: Path, loader: ModelLoader, at_event: int,
             log: Log) -> dict[str, Any]:
    from offline.pipeline import retrain_served_student

    log(f"event {at_event:,}: retraining on {len(history):,} events")
    report = retrain_served_student(cfg, history, root, log=log)
    loaded = loader.load_current(root)
    return {"after_event": at_event, "version": report["registry"]["version"],
            "promoted": report["registry"]["promoted"], "serving": loader.scorer.version, "loaded": loaded,
            "train_seconds": report["_run"]["seconds"]}

