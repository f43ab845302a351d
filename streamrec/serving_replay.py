"""``streamrec eval prequential --serving``: the prequential replay, asking the serving path too.

Before each click is applied, the scorer -- candidates, the current student, the blend -- is asked
for the user's top-k, exactly as a live request would be; the click is a hit if its item is there.
Then the click is applied as usual, and every stream-only learner is scored on it in the same run
(``worker.prequential_every``), so the comparison is like for like.

Every ``retrain_every`` events the student is retrained on everything replayed so far (teacher
warm-started from the previous version, registered and promoted behind the gate) and loaded as a
live scorer would load it. Training here pauses the replay, so each model serves from the event it
was trained up to: a live system would serve it a training run later (minutes), which this replay
does not charge.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec

from serving.model_updates import ModelLoader
from serving.scorer import Scorer
from stream.config import Config
from stream.evaluation.prequential import RankingScore
from stream.evaluation.replay import summarise
from stream.events import Event
from stream.processor import Outcome, PartitionProcessor

Log = Callable[[str], None]


def replay_with_serving(events: Iterable[Event], cfg: Config, retrain_every: int, k: int = 10,
                        registry_root: Path | None = None, log: Log = print,
                        progress: Callable[[int, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    from offline.pipeline import retrain_served_student

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
        served = RankingScore(k)
        fallbacks: dict[str, int] = {}
        models: list[dict[str, Any]] = []
        history: list[Event] = []
        started = time.perf_counter()
        for n, event in enumerate(events, start=1):
            rank = None
            if event.type == "click":
                rec = scorer.recommend(proc, event.user_id, k)
                rank = rec.items.index(event.item_id) if event.item_id in rec.items else None
                if rec.fallback:
                    fallbacks[rec.fallback] = fallbacks.get(rec.fallback, 0) + 1
            if proc.process(event) is Outcome.APPLIED:
                history.append(event)
                if event.type == "click":
                    served.update(rank, n)
            if n % retrain_every == 0:
                log(f"event {n:,}: retraining on {len(history):,} events")
                report = retrain_served_student(cfg, history, root, log=log)
                loaded = loader.load_current(root)
                models.append({"at_event": n, "version": report["registry"]["version"],
                               "promoted": report["registry"]["promoted"], "serving": scorer.version,
                               "loaded": loaded, "train_seconds": report["_run"]["seconds"]})
            if progress and n % 10_000 == 0:
                progress(n, {**summarise([proc], k), "serving": _figures(served, k)})
        result = summarise([proc], k)
        result["serving"] = {**_figures(served, k), "fallbacks": fallbacks, "models": models}
        best = max((name for name in result if name != "serving"), key=lambda name: result[name][f"recall@{k}"] or 0)
        result["serving"]["best_stream_learner"] = best
        result["serving"][f"recall@{k}_over_best_stream_learner"] = round(
            result["serving"][f"recall@{k}"] / max(result[best][f"recall@{k}"], 1e-12), 4)
        result["_run"] = {"events": n, "seconds": round(time.perf_counter() - started, 1),
                          "retrain_every": retrain_every, "blend": {f: getattr(cfg.serving.blend, f)
                                                                    for f in cfg.serving.blend.__struct_fields__}}
        return result


def _figures(score: RankingScore, k: int) -> dict[str, Any]:
    return {f"recall@{k}": round(score.hits / score.n, 4) if score.n else None,
            f"ndcg@{k}": round(score.ndcg / score.n, 4) if score.n else None, "scored_clicks": score.n}
