"""``streamrec eval prequential --serving``: the prequential replay, asking the serving path too.

Before each click is applied, the scorer -- candidates, the current student, the blend -- is asked
for the user's ranking, exactly as a live request would be; the click is a hit if its item is in the
top k. Then the click is applied as usual, and every stream-only learner is scored on it in the
same run, so the comparison is like for like (``streamrec.quality.replay``: the loop, the serving
path and its periodic retraining).

The serving path ranks with the blend it learns online (``stream.learners.blend``): each click is
first ranked under the current weights, then teaches them. For comparison the same candidates and
signals are also ranked under each fixed blend of ``BLEND_GRID``; the best fixed blend is chosen on
the first ``select_clicks`` clicks only, and every ranker -- the learned blend, the chosen fixed one,
each stream-only learner -- is reported on the clicks after.

Is the serving path really ahead? Its lead over the best stream learner is measured pairwise on the
same clicks, with a bootstrap interval that resamples users (``stream.evaluation.paired``).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec

from stream.config import BlendWeights, Config
from stream.evaluation.replay import served_rule, summarise
from stream.events import Event
from stream.learners.blend import OnlineBlend
from stream.processor import LEARNERS, PartitionProcessor
from streamrec.quality.clicks import RankLog
from streamrec.quality.replay import NextClicks, ServingPath, replay

log = logging.getLogger(__name__)

BLEND_GRID = [
    BlendWeights(student=1.0, item_knn=knn, isgd_mf=mf, popularity=pop)
    for knn in (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
    for mf in (0.0, 0.25)
    for pop in (0.0, 0.25)
]


def replay_with_serving(
    events: Iterable[Event],
    cfg: Config,
    retrain_every: int,
    k: int = 10,
    select_clicks: int = 50_000,
    registry_root: Path | None = None,
    progress: Callable[[int, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    cfg = ServingPath.replay_config(cfg)
    grid = [OnlineBlend(msgspec.structs.asdict(w), learning_rate=0.0) for w in BLEND_GRID]
    with tempfile.TemporaryDirectory(prefix="streamrec-replay-") as tmp:
        serving = ServingPath(cfg, retrain_every, registry_root or Path(tmp) / "models", grid=grid)
        clicks = NextClicks({}, serving)

        def report(n: int, proc: PartitionProcessor) -> None:
            if progress:
                progress(n, {**summarise([proc], k), "serving": clicks.log.figures("serving", k, interval=False)})

        run = replay(events, cfg, [serving, clicks], k, report)
    proc: PartitionProcessor = run.pop("processor")
    ranks = clicks.log
    result = summarise([proc], k)
    best = max(LEARNERS, key=lambda name: result[name][f"recall@{k}"] or 0)
    overall = ranks.figures("serving", k, interval=False)
    result["serving"] = {
        **{key: overall[key] for key in (f"recall@{k}", f"ndcg@{k}")},
        "scored_clicks": overall["clicks"],
        **serving.summary(proc, len(ranks)),
        "best_stream_learner": best,
        f"recall@{k}_over_best_stream_learner": round(
            (overall[f"recall@{k}"] or 0) / max(result[best][f"recall@{k}"] or 0, 1e-12), 4
        ),
        f"recall@{k}_lead_over_best_stream_learner": ranks.lead("serving", best, k).to_dict(),
    }
    result["_served_rule"] = served_rule([proc])
    result["blend_selection"] = _selection(ranks, select_clicks, k)
    result["_run"] = {
        "events": run["events"],
        "seconds": run["seconds"],
        "retrain_every": retrain_every,
        "blend_start": msgspec.to_builtins(cfg.serving.blend),
        "blend_learning_rate": cfg.learners.blend_learning_rate,
        "blend_sample_rate": cfg.learners.blend_sample_rate,
    }
    return result


def _selection(ranks: RankLog, select_clicks: int, k: int) -> dict[str, Any]:
    """The blend chosen on the first ``select_clicks`` clicks, and every ranker on the clicks after.

    The comparison that matters is on the clicks after: neither the chosen blend nor the best
    learner there was picked by looking at them.
    """
    selection, after = slice(0, select_clicks), slice(select_clicks, None)
    chosen = max(range(len(BLEND_GRID)), key=lambda i: ranks.hits(f"serving, blend {i}", k, selection).sum())
    chosen_name = f"serving, blend {chosen}"
    recall = {
        "serving, learned blend": ranks.figures("serving", k, after, interval=False)[f"recall@{k}"],
        "serving, chosen blend": ranks.figures(chosen_name, k, after, interval=False)[f"recall@{k}"],
    }
    for name in LEARNERS:
        recall[name] = ranks.figures(name, k, after, interval=False)[f"recall@{k}"]
    learners = [name for name in LEARNERS if recall[name] is not None]
    best = max(learners, key=lambda name: recall[name]) if learners else None
    return {
        "selection_clicks": select_clicks,
        "after_clicks": max(len(ranks) - select_clicks, 0),
        "chosen": msgspec.to_builtins(BLEND_GRID[chosen]),
        f"chosen_recall@{k}_on_selection": ranks.figures(chosen_name, k, selection, interval=False)[f"recall@{k}"],
        f"learned_recall@{k}_on_selection": ranks.figures("serving", k, selection, interval=False)[f"recall@{k}"],
        f"recall@{k}_after_selection": recall,
        "best_stream_learner_after_selection": best,
        f"recall@{k}_lead_after_selection": None
        if best is None
        else {
            "learned blend": ranks.lead("serving", best, k, after).to_dict(),
            "chosen blend": ranks.lead(chosen_name, best, k, after).to_dict(),
        },
    }
