"""Sequence teacher and distilled student on the exported RecBole split, evaluated as RecBole does SASRec.

The split is ``streamrec.quality.recbole_split``'s (RecBole 1.2.1's global temporal 8:1:1 over the
clicks, the atomic files every RecBole model of the side-by-side reads). A sequential model is
evaluated otherwise than a general one (``recbole/data/dataset/sequential_dataset.py``,
``FullSortEvalDataLoader``): every click of a part but a user's very first is a prediction point
whose history is the user's earlier clicks (at most ``MAX_ITEM_LIST_LENGTH`` = 50, from any part);
each point ranks the whole catalogue with nothing masked, and its one relevant item is the item it
clicked, so Recall@k is the hit rate and NDCG@k 1/log2(rank + 2) for a hit. The side-by-side's
RecBole runner writes the same points for SASRec.

Item rows are numbered over the whole log, as RecBole numbers its ids; an item first clicked after
the training part keeps its untrained row (its content tokens still place it), and nothing else
is read from after the training part.

    python -m streamrec.quality.recbole_sequential [--seeds 0,1,2] [--teacher-only | --ablation]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from stream.config import ServingConfig
from stream.evaluation.paired import cluster_interval, ratio, user_sums
from stream.events import Event
from streamrec.quality.clicks import RankLog
from streamrec.quality.recbole_split import split_sizes

if TYPE_CHECKING:
    from offline.samples import Catalogue
    from offline.sequence_distill import StudentSettings
    from offline.sequence_fit import SequenceFitResult, SequenceFitSettings
    from offline.sequence_model import SequenceModel, Shape
    from offline.sequences import NextClicks, Windows

log = logging.getLogger(__name__)

HISTORY = 50  # RecBole's MAX_ITEM_LIST_LENGTH in the side-by-side
ITEM_TOKEN_WIDTH = 12


@dataclass(frozen=True)
class PartBounds:
    """Log positions (indices of the events in time order, as ``offline.sequences`` numbers them)
    of the first valid and the first test click."""

    valid_from: int
    test_from: int


def part_bounds(events: Sequence[Event]) -> PartBounds:
    """Where ``recbole_split.split_clicks``'s valid and test parts start, as log positions."""
    ordered = sorted(events, key=lambda e: e.ts)  # stable: ties keep log order, as split_clicks
    clicks = [position for position, e in enumerate(ordered) if e.type == "click"]
    train, valid, _ = split_sizes(len(clicks))
    return PartBounds(clicks[train], clicks[train + valid])


@dataclass
class PointRanks:
    """Each test point's user, clicked item id and the 0-based rank of that item in a full sort."""

    users: list[str]
    items: list[str]
    ranks: np.ndarray

    def log(self, name: str) -> RankLog:
        """The ranks as a ``RankLog`` column ``name``: its figures resample users."""
        log = RankLog([name])
        for user, rank in zip(self.users, self.ranks.tolist()):
            log.add(user, {name: rank})
        return log


def paired_log(a: PointRanks, b: PointRanks) -> RankLog:
    """A ``RankLog`` of columns "a" and "b" over the points both ranked (matched by user and item)."""
    at = {key: n for n, key in enumerate(zip(b.users, b.items))}
    log = RankLog(["a", "b"])
    for n, key in enumerate(zip(a.users, a.items)):
        if key in at:
            log.add(key[0], {"a": int(a.ranks[n]), "b": int(b.ranks[at[key]])})
    return log


def paired(a: PointRanks, b: PointRanks, k: int) -> dict[str, Any]:
    """a's lead over b in recall@k and NDCG@k on the points both ranked (matched by user and item)."""
    log = paired_log(a, b)
    return {
        "points": len(log),
        "unmatched": (len(a.ranks) - len(log), len(b.ranks) - len(log)),
        f"recall@{k}": log.lead("a", "b", k).to_dict(),
        f"ndcg@{k}": log.lead("a", "b", k, ndcg=True).to_dict(),
    }


@dataclass
class SequenceSplit:
    """The split as sequence models read it: training windows (train part), validation and test
    prediction points, and the item content the models embed."""

    train: Windows
    valid: NextClicks
    test: NextClicks
    catalogue: Catalogue

    def new_model(self, shape: Shape, seed: int) -> SequenceModel:
        import torch

        from offline.sequence_model import SequenceModel

        torch.manual_seed(seed)
        tokens = torch.from_numpy(self.catalogue.item_token_matrix(ITEM_TOKEN_WIDTH))
        return SequenceModel(tokens, len(self.catalogue.item_tokens), HISTORY, shape)

    def test_ranks(self, model: SequenceModel) -> PointRanks:
        from offline.sequence_fit import next_click_logits, target_ranks

        ranks = target_ranks(next_click_logits(model, self.test), self.test.target)
        items = [self.catalogue.items.keys[row - 1] for row in self.test.target.tolist()]
        return PointRanks(self.test.user, items, ranks)

    def points(self) -> dict[str, int]:
        return {"train": int((self.train.target > 0).sum()), "valid": len(self.valid), "test": len(self.test)}


def sequence_split(events: Sequence[Event]) -> SequenceSplit:
    """Sequences of the whole log, cut where the exported split's parts start. (torch and the
    offline package are imported here: a module-level import would reach every streamrec command.)"""
    from offline.samples import Catalogue
    from offline.sequences import next_clicks, training_windows, user_sequences

    bounds = part_bounds(events)
    catalogue = Catalogue()
    sequences = user_sequences(events, catalogue)
    return SequenceSplit(
        training_windows(sequences.values(), HISTORY, until=bounds.valid_from),
        next_clicks(sequences, HISTORY, bounds.valid_from, bounds.test_from),
        next_clicks(sequences, HISTORY, bounds.test_from),
        catalogue,
    )


@dataclass
class Fitted:
    model: SequenceModel
    info: dict[str, Any]


def fit_teacher(split: SequenceSplit, settings: SequenceFitSettings) -> Fitted:
    """The teacher trained on the train part's windows, early-stopped on valid NDCG."""
    from offline.sequence_fit import NextClickNDCG, fit_sequence_model
    from offline.sequence_model import TEACHER

    started = time.perf_counter()
    model = split.new_model(TEACHER, settings.seed)
    fitted = fit_sequence_model(model, split.train, NextClickNDCG(split.valid, settings.k), settings)
    return Fitted(model, _fit_info(model, settings, fitted, started))


def distil_student(split: SequenceSplit, teacher: SequenceModel, student: StudentSettings) -> Fitted:
    """The student distilled from ``teacher`` on the same windows, early-stopped on valid NDCG."""
    from offline.sequence_distill import SequenceDistillation
    from offline.sequence_fit import NextClickNDCG, fit_sequence_model

    started = time.perf_counter()
    model = split.new_model(student.shape, student.fit.seed)
    loss = SequenceDistillation(teacher, student.shape.dim, student.kd, student.fit.conversion_weight)
    fitted = fit_sequence_model(model, split.train, NextClickNDCG(split.valid, student.fit.k), student.fit, loss)
    return Fitted(model, {**_fit_info(model, student.fit, fitted, started), "kd": asdict(student.kd)})


def _fit_info(
    model: SequenceModel, settings: SequenceFitSettings, fitted: SequenceFitResult, started: float
) -> dict[str, Any]:
    return {
        "shape": asdict(model.shape),
        "settings": asdict(settings),
        "fit": asdict(fitted),
        "parameters": sum(p.numel() for p in model.parameters()),
        "seconds": round(time.perf_counter() - started, 1),
    }


def fit_and_rank(events: Sequence[Event], settings: SequenceFitSettings) -> tuple[PointRanks, dict[str, Any]]:
    """The teacher's test ranks and what its fit did (the side-by-side's teacher row)."""
    split = sequence_split(events)
    teacher = fit_teacher(split, settings)
    return split.test_ranks(teacher.model), {"points": split.points(), **teacher.info}


def evaluate_sequence_teacher(
    events: Sequence[Event], settings: SequenceFitSettings, k: int = 10, resamples: int = 9999
) -> dict[str, Any]:
    """``fit_and_rank``'s fit, with test Recall@k and NDCG@k and their user-level intervals."""
    ranks, info = fit_and_rank(events, settings)
    return {**info, **ranks.log("teacher").figures("teacher", k, resamples=resamples)}


def onnx_ms(split: SequenceSplit, models: dict[str, SequenceModel], requests: int = 200) -> dict[str, float]:
    """Each model's median milliseconds per request through its exported ONNX graph (one thread): the
    histories of the first ``requests`` test points, with as many catalogue items as a request ranks
    at most under the serving defaults."""
    from offline.sequence_export import models_ms_per_request

    t, n = split.test, min(requests, len(split.test))
    return models_ms_per_request(models, (t.item[:n], t.kind[:n], t.gap[:n]), ServingConfig().most_candidates())


def evaluate_sequence_models(
    events: Sequence[Event],
    settings: SequenceFitSettings,
    student: StudentSettings | None = None,
    k: int = 10,
    resamples: int = 9999,
) -> dict[str, Any]:
    """Teacher and distilled student at one seed: test figures with user-level intervals, the
    student's share of the teacher's NDCG@k (an interval resampling users), and the student's size
    and ONNX speed against the teacher's; under "ranks" each model's ``PointRanks`` (not JSON)."""
    split = sequence_split(events)
    teacher = fit_teacher(split, settings)
    student = student or default_student(settings.seed)
    pupil = distil_student(split, teacher.model, student)
    teacher_ranks, student_ranks = split.test_ranks(teacher.model), split.test_ranks(pupil.model)
    log = paired_log(student_ranks, teacher_ranks)
    users = np.frombuffer(log.users, dtype=np.int64)
    share = cluster_interval(user_sums(users, log.gains("a", k), log.gains("b", k)), ratio, resamples=resamples)
    speed = onnx_ms(split, {"teacher": teacher.model, "student": pupil.model})
    return {
        "points": split.points(),
        "teacher": {**teacher.info, **teacher_ranks.log("teacher").figures("teacher", k, resamples=resamples)},
        "student": {**pupil.info, **student_ranks.log("student").figures("student", k, resamples=resamples)},
        f"student_share_of_teacher_ndcg@{k}": share.to_dict(),
        "student_minus_teacher": paired(student_ranks, teacher_ranks, k),
        "parameter_ratio": round(pupil.info["parameters"] / teacher.info["parameters"], 4),
        "onnx_ms_per_request": speed,
        "onnx_speedup": round(speed["teacher"] / speed["student"], 2),
        "onnx_candidates": ServingConfig().most_candidates(),
        "ranks": {"teacher": teacher_ranks, "student": student_ranks},
    }


def ablation(
    events: Sequence[Event], settings: SequenceFitSettings, student: StudentSettings | None = None
) -> dict[str, Any]:
    """What each part gives, on the development part only (best validation NDCG@k): the teacher
    with and without its conversion task, and the student distilled from the served teacher under
    each variant of ``offline.sequence_distill.kd_ablation``."""
    from offline.sequence_distill import kd_ablation

    split = sequence_split(events)
    teacher = fit_teacher(split, settings)
    single_task = fit_teacher(split, replace(settings, conversion_weight=0.0))
    student = student or default_student(settings.seed)
    out: dict[str, Any] = {"teacher": _valid(teacher), "teacher_single_task": _valid(single_task)}
    for name, kd in kd_ablation(student.kd).items():
        out[f"student_{name}"] = _valid(distil_student(split, teacher.model, replace(student, kd=kd)))
    return {"validation": out, "k": settings.k, "student": asdict(student)}


def _valid(fitted: Fitted) -> dict[str, Any]:
    fit = fitted.info["fit"]
    return {"ndcg": max(fit["validation_ndcg"]), "best_epoch": fit["best_epoch"], "seconds": fitted.info["seconds"]}


def default_student(seed: int) -> StudentSettings:
    """The served student's settings, trained at ``seed``."""
    from offline.sequence_distill import StudentSettings

    return StudentSettings(fit=replace(StudentSettings().fit, seed=seed))


def summary(result: dict[str, Any], k: int) -> str:
    """One line of ``evaluate_sequence_models``'s figures."""
    n, share = f"ndcg@{k}", result[f"student_share_of_teacher_ndcg@{k}"]
    return (
        f"teacher {n} {result['teacher'][n]:.4f}, student {result['student'][n]:.4f} "
        f"({share['estimate']:.1%} of the teacher's, [{share['low']:.1%}, {share['high']:.1%}]); "
        f"parameters {result['student']['parameters']:,} / {result['teacher']['parameters']:,} "
        f"({result['parameter_ratio']:.1%}); ONNX {result['onnx_ms_per_request']['student']:.3f} / "
        f"{result['onnx_ms_per_request']['teacher']:.3f} ms per request ({result['onnx_speedup']:.1f}x faster)"
    )


def main(argv: Sequence[str] | None = None) -> None:
    from offline.sequence_fit import SequenceFitSettings
    from stream.sources.movielens import movielens_events

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0", help="training seeds, comma-separated")
    parser.add_argument("--k", type=int, default=10)
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--teacher-only", action="store_true", help="no student: the teacher's figures alone")
    what.add_argument(
        "--ablation", action="store_true", help="validation NDCG of each multi-task and distillation variant instead"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    events = list(movielens_events())
    for seed in (int(s) for s in args.seeds.split(",")):
        settings = SequenceFitSettings(seed=seed, k=args.k)
        if args.teacher_only:
            result = evaluate_sequence_teacher(events, settings, args.k)
        elif args.ablation:
            result = ablation(events, settings)
        else:
            result = evaluate_sequence_models(events, settings, k=args.k)
            log.info("seed %d: %s", seed, summary(result, args.k))
            del result["ranks"]
        json.dump(result, sys.stdout)
        print(flush=True)


if __name__ == "__main__":
    main()
