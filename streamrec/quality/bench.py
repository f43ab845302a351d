"""``streamrec bench quality``: every data set under every protocol, with same-run baselines.

Per data set, one prequential replay (``streamrec.quality.replay``) is watched by:

* (a) ``NextClicks``: next-click Recall@k / NDCG@k of every ranker under the served rule --
  popularity (clicks so far), trending (decayed clicks), the stream learners, the serving path with
  its periodic retraining, and on generated data the oracle -- each with a 95 % interval that
  resamples users, and its lead over popularity paired on the same clicks;
* (a) for conversions (``ConversionLog``): each conversion credited with the ranks its click got,
  the same figures on those, and where conversions carry a value, the share of value in the top k;
* (b, c) ``Slates`` where the log has impressions: per-visit GAUC and NDCG of the clicked among the
  shown, the click model's log-loss against the constant click-through rate, and where propensities
  were logged the self-normalised IPS click-through rate, conversion rate and value per impression
  of each ranker's top k beside the logging policy's;
* (e) ``DriftClicks`` where the generator's drift point is known: each ranker's recall in windows
  around the drift and its recovery, each learner's detector's false alarms and delay
  (``streamrec.quality.drift``).

Data sets run in parallel processes (one per core); each returns plain data, and the whole result
is written where the docs' results page reads it.
"""

from __future__ import annotations

import logging
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from stream.config import Config
from stream.evaluation.replay import served_rule
from stream.processor import LEARNERS, PartitionProcessor
from streamrec.provenance import run_stamp
from streamrec.quality.clicks import RankLog
from streamrec.quality.conversions import ConversionLog
from streamrec.quality.datasets import DataSet, datasets
from streamrec.quality.drift import DriftClicks, drift_summary
from streamrec.quality.rankers import Oracle, Trending
from streamrec.quality.replay import NextClicks, ServingPath, replay
from streamrec.quality.slates import (
    Slates,
    Visit,
    catalogue_scores,
    catalogue_top_k,
    click_probabilities,
    collect_visits,
    learner_scores,
    learner_top_k,
)

log = logging.getLogger(__name__)

BASELINE = "popularity"
# Bootstrap resamples per interval: a run computes hundreds of them (every ranker, protocol and data
# set), where 9,999 each cost more than the replays themselves.
RESAMPLES = 1999


def evaluate(ds: DataSet, cfg: Config, k: int = 10, serving: bool = True) -> dict[str, Any]:
    """Replay one data set under protocols (a)-(c); plain data out."""
    started = time.perf_counter()
    events = ds.load()
    cfg = ServingPath.replay_config(
        msgspec.structs.replace(cfg, worker=msgspec.structs.replace(cfg.worker, prequential_every=1))
    )
    truth = ds.oracle() if ds.oracle else None
    rankers: dict[str, Any] = {"trending": Trending(), **({"oracle": Oracle(truth)} if truth else {})}
    with tempfile.TemporaryDirectory(prefix="streamrec-quality-") as tmp:
        on_drift = ds.retrain_on_drift and cfg.train.on_drift
        path = ServingPath(cfg, ds.retrain_every, Path(tmp) / "models", on_drift=on_drift) if serving else None
        clicks = NextClicks(rankers, path)
        visits = collect_visits(events)
        slates = _slates(visits, rankers, truth, path, k) if visits else None
        drift_ts = ds.drift_ts_ms() if ds.drift_ts_ms else None
        marks = DriftClicks(drift_ts) if drift_ts is not None else None
        observers = [o for o in (path, clicks, slates, marks) if o is not None]
        run = replay(events, cfg, observers, k, lambda n, _: log.info("[%s] %d of %d events", ds.name, n, len(events)))
    proc: PartitionProcessor = run["processor"]
    result: dict[str, Any] = {
        "dataset": ds.name,
        "seed": ds.seed,
        "user_slice": ds.user_slice,
        "held_out": ds.held_out,
        "events": run["events"],
        "prequential": _prequential(clicks.log, ds.report, k, proc, clicks.conversions),
    }
    if path is not None:
        result["serving"] = {**path.summary(proc, len(clicks.log)), "student": bool(ds.retrain_every)}
    if slates is not None:
        result.update(slates.summary(RESAMPLES))
    if marks is not None:
        result["drift"] = drift_summary(clicks.log, marks, proc, k)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def _slates(visits: dict[str, Visit], rankers: dict[str, Any], truth: Any, path: ServingPath | None, k: int) -> Slates:
    shown = {name: learner_scores(name) for name in LEARNERS}
    # Among shown items the click model is judged on what it estimates per impression, P(click |
    # shown) at the logged position, as the oracle is; its catalogue score adds exposure.
    shown["click_model"] = click_probabilities
    shown["trending"] = catalogue_scores(rankers["trending"])
    top = {name: learner_top_k(name, k) for name in LEARNERS}
    top.update({name: catalogue_top_k(r, k) for name, r in rankers.items()})
    if truth is not None:

        def true_click_probability(proc: PartitionProcessor, user: int, items: np.ndarray, visit: Visit) -> np.ndarray:
            return truth.click_probability(
                visit.user_id, [e.item_id for e in visit.impressions], visit.ts, visit.positions
            )

        shown["oracle"] = true_click_probability
    if path is not None:

        def served(proc: PartitionProcessor, user: int, visit: Visit) -> np.ndarray:
            rec = path.scorer.recommend(proc, visit.user_id, k)
            return np.array([proc.state.items.get(i) for i in rec.items], dtype=np.int64)

        top["serving"] = served
    return Slates(visits, shown, top, k, click_probabilities)


def _prequential(
    log: RankLog,
    report: tuple[float, float],
    k: int,
    proc: PartitionProcessor,
    conversions: ConversionLog | None = None,
) -> dict[str, Any]:
    """Every ranker on the reported clicks: figures with intervals, the paired lead over
    popularity (and the serving path's over item-kNN), and the share of the popularity-to-oracle
    gap closed; where the log has
    conversions, the same figures of the conversions that followed the reported clicks."""
    n = len(log)
    part = slice(int(report[0] * n), int(report[1] * n))
    figures = {name: log.figures(name, k, part, resamples=RESAMPLES) for name in log.ranks}
    recall = f"recall@{k}"
    for name, f in figures.items():
        if name != BASELINE and f["clicks"]:
            f[f"{recall}_lead_over_{BASELINE}"] = log.lead(name, BASELINE, k, part, RESAMPLES).to_dict()
    serving = figures.get("serving")
    if serving and serving["clicks"] and "item_knn" in figures:  # the strongest classic baseline
        serving[f"{recall}_lead_over_item_knn"] = log.lead("serving", "item_knn", k, part, RESAMPLES).to_dict()
    oracle, base = figures.get("oracle", {}).get(recall), figures[BASELINE][recall]
    if oracle is not None and base is not None and oracle > base:
        for f in figures.values():
            if f[recall] is not None:
                f["gap_closed"] = round((f[recall] - base) / (oracle - base), 4)
    return {
        "clicks": part.stop - part.start,
        "report": list(report),
        "served_rule": served_rule([proc]),
        "rankers": figures,
        **({"conversions": conversions.figures(log, k, part, BASELINE, RESAMPLES)} if conversions else {}),
    }


def _job(part: str, quick: bool, index: int, cfg: Config, k: int, serving: bool) -> dict[str, Any]:
    """One data set in a worker process (data sets hold loaders, so they are rebuilt here)."""
    ds = datasets(part, quick)[index]
    return evaluate(ds, _one_thread(cfg), k, serving)


def _one_thread(cfg: Config) -> Config:
    """Jobs share the cores one each: torch (and training, which sets its own thread count from
    ``train.threads``) on one thread. Two jobs of two threads each on two cores made every training
    step wait on the other job's threads -- a retraining ran ten times slower."""
    import torch

    torch.set_num_threads(1)
    return msgspec.structs.replace(cfg, train=msgspec.structs.replace(cfg.train, threads=1))


def _recbole_job(cfg: Config, k: int) -> dict[str, Any]:
    """Protocol (d)'s second split: MovieLens-100K on RecBole's global temporal 8:1:1 split."""
    from stream.sources.movielens import movielens_events
    from streamrec.quality.recbole_split import evaluate_split

    return evaluate_split([e for e in movielens_events() if e.type == "click"], cfg, k, resamples=RESAMPLES)


def _offline_job(cfg: Config) -> dict[str, Any]:
    """Protocol (d): the models of ``train.model`` on MovieLens-100K's temporal split, three training
    seeds, as ``streamrec train --once`` reports them (registered into a throwaway registry; the
    sequence models' ablations left to ``train --once``)."""
    from stream.sources.movielens import movielens_events

    cfg = _one_thread(cfg)
    events = list(movielens_events())
    with tempfile.TemporaryDirectory(prefix="streamrec-quality-offline-") as tmp:
        if cfg.train.model == "sequence":
            from offline.sequence_pipeline import summary_lines, train_once

            report = train_once(cfg, events, Path(tmp), seeds=3, ablations=False)
        else:
            from offline.pipeline import summary_lines, train_once  # type: ignore[no-redef]

            report = train_once(cfg, events, registry_root=Path(tmp), seeds=3)
    report.pop("registry", None)
    report["summary"] = summary_lines(report)
    return report


def bench_quality(
    cfg: Config,
    part: str = "evaluation",
    quick: bool = False,
    k: int = 10,
    serving: bool = True,
    processes: int = 2,
) -> dict[str, Any]:
    """Every data set of ``part`` in its own job, and on full runs protocol (d) on MovieLens-100K
    (the offline temporal split at three seeds, RecBole's split); plain data with its provenance."""
    started = time.perf_counter()
    specs = datasets(part, quick)
    results: list[dict[str, Any] | None] = [None] * len(specs)
    out: dict[str, Any] = {}
    with ProcessPoolExecutor(max_workers=processes) as pool:
        # The offline job is the longest (three trainings on one core): submitted first, so that the
        # other jobs share the remaining cores while it runs rather than wait in front of it.
        extra = (
            {}
            if quick
            else {"offline": pool.submit(_offline_job, cfg), "recbole_split": pool.submit(_recbole_job, cfg, k)}
        )
        futures = {pool.submit(_job, part, quick, i, cfg, k, serving): i for i in range(len(specs))}
        for future in as_completed(futures):
            i = futures[future]
            results[i] = future.result()
            log.info("%s: done in %.0f s", specs[i].name, results[i]["seconds"])
        for name, future in extra.items():
            out[name] = future.result()
            log.info("%s: done", name)
    done = [r for r in results if r is not None]
    return {
        "_run": _provenance(part, quick, k, serving, time.perf_counter() - started),
        "datasets": done,
        "across_seeds": across_seeds(done, k),
        **out,
    }


def across_seeds(results: list[dict[str, Any]], k: int) -> dict[str, Any]:
    """Per generator: each ranker's recall@k as the mean over seeds with its range."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        if r["seed"] is not None:
            groups.setdefault(r["dataset"].split("/")[0], []).append(r)
    out: dict[str, Any] = {}
    for generator, runs in groups.items():
        names = set.intersection(*(set(r["prequential"]["rankers"]) for r in runs))
        out[generator] = {"seeds": [r["seed"] for r in runs], "rankers": {}}
        for name in sorted(names):
            values = [r["prequential"]["rankers"][name][f"recall@{k}"] for r in runs]
            values = [v for v in values if v is not None]
            if values:
                out[generator]["rankers"][name] = {
                    f"recall@{k}_mean": round(float(np.mean(values)), 4),
                    "min": min(values),
                    "max": max(values),
                }
    return out


def _provenance(part: str, quick: bool, k: int, serving: bool, seconds: float) -> dict[str, Any]:
    """Date, commit, machine and command (``streamrec.provenance``), and how this part was run."""
    return {
        **run_stamp("streamrec bench quality"),
        "part": part,
        "quick": quick,
        "k": k,
        "serving": serving,
        "seconds": round(seconds, 1),
    }
