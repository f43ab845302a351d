"""One training run: events -> dataset -> teacher -> distilled student -> ONNX -> registry.

The figures of every model come from the same test window and the same sampled test clicks, so
teacher, students and the popularity baseline (clicks so far) are compared on equal terms.
``train_once`` trains the three models under several training seeds on that one dataset (a change of
float summation order alone moved NDCG@10 by several per cent, docs/results/history.md): every figure is the mean
over the seeds with its spread, the paired comparisons carry intervals that resample users, and the
first seed's student is the one registered. The periodic retrain trains one seed.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from scipy.special import expit
from torch import nn

from offline.compress import mark_quantised, quantise_if_harmless
from offline.curriculum import Curriculum, popularity_difficulty
from offline.data_parallel import secondary_rank
from offline.distill import KDWeights
from offline.evaluate import (
    Scorer,
    auc,
    click_gains,
    logloss,
    popularity_gains,
    ranking,
    ranking_figures,
    sample_clicks,
    share_interval,
)
from offline.export import export_onnx, ms_per_1000, parity, stage
from offline.features import ContentTables, as_tensors
from offline.fit import (
    FitResult,
    FitSettings,
    StudentLoss,
    TeacherLoss,
    fit,
    teacher_targets,
)
from offline.layers import n_params
from offline.registry import QualityGate, Registry
from offline.samples import Catalogue, Dataset, Groups, Rows, TestClick, build_dataset
from offline.student import Student
from offline.teacher import Teacher
from offline.teacher_checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from offline.warm_start import warm_start
from stream.config import Config, ConfigError
from stream.evaluation.paired import lead_interval
from stream.events import Event

log = logging.getLogger(__name__)

# Distillation used for the served student, chosen by validation NDCG@10 in the ablation on ml-100k
# (docs/results/history.md, "Ablations"): soft targets + hint + the listwise ranking loss.
SERVED_KD = KDWeights(soft=0.5, hint=0.1, rank=3.0, temperature=1.0)


@dataclass
class Trained:
    model: nn.Module
    fit: FitResult


# The previous version's teacher: its state dict and the catalogue its rows are indexed by.
PreviousTeacher = tuple[dict[str, torch.Tensor], Catalogue]


def settings(cfg: Config, epochs: int | None = None, seed: int | None = None) -> FitSettings:
    t = cfg.train
    return FitSettings(
        epochs=epochs or t.epochs,
        batch_size=t.batch_size,
        learning_rate=t.learning_rate,
        weight_decay=t.weight_decay,
        patience=t.patience,
        seed=t.seed if seed is None else seed,
    )


def training_seeds(cfg: Config, n: int) -> list[int]:
    """``n`` consecutive training seeds from ``train.seed``; the first is the one registered."""
    return [cfg.train.seed + k for k in range(n)]


def dataset_from_config(cfg: Config, events: Iterable[Event]) -> Dataset:
    """Rows and split as ``cfg.train`` describes them (one place for every training command)."""
    t = cfg.train
    return build_dataset(
        events,
        recent_len=t.recent_items,
        negatives=t.sampled_negatives,
        validation_share=t.validation_share,
        test_share=t.test_share,
        seed=t.seed,
    )


def model_sizes(ds: Dataset) -> tuple[int, int, int, int]:
    c = ds.catalogue
    return len(c.users), len(c.items), len(c.item_tokens), len(c.user_tokens)


def train_teacher(
    ds: Dataset,
    tables: ContentTables,
    cfg: Config,
    curriculum: Curriculum,
    task: str = "multi",
    model: Teacher | None = None,
    seed: int | None = None,
) -> Trained:
    """Fit a teacher (a fresh one unless ``model`` is given, e.g. warm-started) under training
    ``seed`` (default ``train.seed``): initialisation, batch order and dropout."""
    seed = cfg.train.seed if seed is None else seed
    torch.manual_seed(seed)  # reproducible initialisation (torch seeds itself randomly)
    teacher = model or Teacher(*model_sizes(ds))
    loss = TeacherLoss(teacher, tables, ds.train, ds.validation, task, cfg.train.teacher_listwise)
    groups = Groups.of(ds.train)
    result = fit(
        teacher,
        loss.batch,
        loss.validate,
        groups,
        popularity_difficulty(ds.train, groups),
        settings(cfg, seed=seed),
        curriculum,
        f"teacher[{task}]",
    )
    return Trained(teacher, result)


def train_student(
    ds: Dataset,
    tables: ContentTables,
    cfg: Config,
    kd: KDWeights,
    teacher: Teacher | None,
    targets=None,
    label: str = "student",
    seed: int | None = None,
) -> Trained:
    """Fit a student under training ``seed`` (default ``train.seed``); the validation clicks it is
    selected on are the same for every seed."""
    seed = cfg.train.seed if seed is None else seed
    torch.manual_seed(seed)
    student = Student(*model_sizes(ds))
    loss = StudentLoss(
        student,
        tables,
        ds.train,
        ds.validation,
        kd,
        targets if kd.uses_teacher else None,
        teacher.hint_dim if teacher is not None else 1,
    )
    # The student is selected by what it is served for: NDCG@10 on the validation window's clicks
    # (label log-loss picks early epochs of distilled students that rank worse), on
    # ``train.validation_clicks`` clicks: with 1,000, one epoch's NDCG moved by about as much as
    # epochs differ; more would be ranked every epoch.
    val_clicks = sample_clicks(ds.validation_clicks, cfg.train.validation_clicks, cfg.train.seed)

    def negative_ndcg() -> float:
        return -ranking(torch_scorer(student), val_clicks, tables)["ndcg@10"]

    groups = Groups.of(ds.train)
    result = fit(
        loss.net,
        loss.batch,
        negative_ndcg,
        groups,
        popularity_difficulty(ds.train, groups),
        settings(cfg, epochs=cfg.train.epochs + 2, seed=seed),
        Curriculum(cfg.train.curriculum),
        label,
    )
    return Trained(student, result)


def torch_scorer(model: nn.Module) -> Scorer:
    """The model's click logits on named model inputs (``ContentTables.arrays``), as ONNX takes them."""

    def score(inputs: dict[str, np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            return model(as_tensors(inputs))[0].numpy()

    return score


def rows_logits(model: nn.Module, tables: ContentTables, rows: Rows) -> tuple[np.ndarray, np.ndarray]:
    """Click and second-head logits over ``rows`` (the second is the cvr head for the teacher)."""
    with torch.no_grad():
        outs = [model(tables.rows(rows, slice(i, i + 8192))) for i in range(0, len(rows), 8192)]
    return torch.cat([o[0] for o in outs]).numpy(), torch.cat([o[1] for o in outs]).numpy()


def binary_kl(p_teacher: np.ndarray, p_student: np.ndarray, eps: float = 1e-7) -> float:
    """Mean KL(teacher || student) of the Bernoulli click distributions over rows."""
    p, q = np.clip(p_teacher, eps, 1 - eps), np.clip(p_student, eps, 1 - eps)
    return float(np.mean(p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))))


def test_window_figures(
    model: nn.Module, click_logit: np.ndarray, ds: Dataset, tables: ContentTables, clicks, onnx_dir: Path, name: str
) -> tuple[dict[str, Any], np.ndarray]:
    """``click_logit``: the model's (n_test,) logits on the test rows. Returns the figures and the
    (n_clicks,) per-click NDCG@10 gains behind them."""
    gains = click_gains(torch_scorer(model), clicks, tables)
    figures = {
        "auc_click": auc(click_logit, ds.test.click),
        "logloss_click": logloss(expit(click_logit), ds.test.click),
        **ranking_figures(gains),
        "params": n_params(model),
    }
    rows = tables.arrays(ds.test.user[:1000], ds.test.item[:1000], ds.test.recent[:1000])
    path = onnx_dir / f"{name}.onnx"
    export_onnx(model, path, rows)
    figures["onnx_ms_per_1000"] = ms_per_1000(path, rows)
    figures["onnx_parity_max_abs_diff"] = parity(model, path, rows)
    return figures, gains


MODELS = ("teacher", "student", "student_no_kd")


@dataclass
class SeedRun:
    """The three models trained under one training seed, and the seconds each took."""

    seed: int
    models: dict[str, Trained]
    warm: dict[str, Any]
    seconds: dict[str, float]


@dataclass
class Prepared:
    """What every training command starts from: the dataset as ``cfg.train`` describes it, its
    content tables, and the previous version's teacher to warm-start from."""

    cfg: Config
    ds: Dataset
    tables: ContentTables
    previous: PreviousTeacher | None


def train_seed(p: Prepared, seed: int) -> SeedRun:
    """Teacher (warm-started from the previous one when it fits), distilled student and student_no_kd."""
    seconds: dict[str, float] = {}
    lap = Lap(seconds)
    teacher, warm, student = train_served(p, seed, lap)
    no_kd = train_student(p.ds, p.tables, p.cfg, KDWeights.labels_only(), None, label="student_no_kd", seed=seed)
    lap("student_no_kd")
    log.info("seed %d: student_no_kd: best epoch %d, %.0f s", seed, no_kd.fit.best_epoch + 1, no_kd.fit.seconds)
    return SeedRun(seed, {"teacher": teacher, "student": student, "student_no_kd": no_kd}, warm, seconds)


def train_served(p: Prepared, seed: int, lap: Callable[[str], None]) -> tuple[Trained, dict[str, Any], Trained]:
    """What serving needs, the same in ``train_once`` and the periodic retrain: the teacher (warm-
    started from the previous one when it fits), how it was started, and the student distilled from it."""
    teacher, warm = _teacher_for_this_version(p.cfg, p.ds, p.tables, p.previous, seed)
    lap("teacher")
    log.info(
        f"seed {seed}: teacher ({'warm-started' if warm['warm_started'] else 'cold'}): best epoch "
        f"{teacher.fit.best_epoch + 1}, validation loss {teacher.fit.best_loss:.4f}, {teacher.fit.seconds:.0f} s"
    )
    student = _distilled_student(p.cfg, p.ds, p.tables, teacher.model, seed)
    lap("student")
    log.info("seed %d: student: best epoch %d, %.0f s", seed, student.fit.best_epoch + 1, student.fit.seconds)
    return teacher, warm, student


def evaluate_seed(
    run: SeedRun, ds: Dataset, tables: ContentTables, clicks: list[TestClick], onnx_dir: Path
) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """One seed's test figures per model, and each model's (n_clicks,) NDCG@10 gains behind them."""
    logits = {name: rows_logits(trained.model, tables, ds.test)[0] for name, trained in run.models.items()}
    figures: dict[str, dict[str, Any]] = {}
    gains: dict[str, np.ndarray] = {}
    for name, trained in run.models.items():
        figures[name], gains[name] = test_window_figures(
            trained.model, logits[name], ds, tables, clicks, onnx_dir, f"{name}-{run.seed}"
        )
        figures[name]["best_epoch"] = trained.fit.best_epoch + 1
        if name == "teacher":
            figures[name]["validation_loss"] = trained.fit.best_loss
        else:  # students are selected by validation NDCG@10 (fit minimises its negative)
            figures[name]["validation_ndcg@10"] = -trained.fit.best_loss
    for name in ("student", "student_no_kd"):
        figures[name]["kl_teacher_student"] = binary_kl(expit(logits["teacher"]), expit(logits[name]))
    student, teacher = figures["student"], figures["teacher"]
    student["ndcg_share_of_teacher"] = student["ndcg@10"] / max(teacher["ndcg@10"], 1e-12)
    student["params_share_of_teacher"] = student["params"] / teacher["params"]
    student["speedup_vs_teacher"] = teacher["onnx_ms_per_1000"] / student["onnx_ms_per_1000"]
    return figures, gains


def over_seeds(per_seed: list[dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    """One model's figures under each seed -> each figure's mean over the seeds (one equal in every
    seed is kept as it is), its sd, min and max under ``spread``, and the seeds' own under ``by_seed``."""
    out: dict[str, Any] = {}
    spread: dict[str, dict[str, float]] = {}
    for key, first in per_seed[0].items():
        if not isinstance(first, (int, float)) or isinstance(first, bool):
            continue
        values = np.array([figures[key] for figures in per_seed], dtype=np.float64)
        if np.all(values == values[0]):
            out[key] = first
            continue
        out[key] = float(values.mean())
        spread[key] = {"sd": float(values.std(ddof=1)), "min": float(values.min()), "max": float(values.max())}
    return {**out, "spread": spread, "by_seed": [{"seed": seed, **figures} for seed, figures in zip(seeds, per_seed)]}


def paired_comparisons(gains: dict[str, np.ndarray], users: np.ndarray) -> dict[str, dict[str, float | int]]:
    """NDCG@10 of two models on the same clicks, with 95 % intervals that resample users (each with
    all their clicks). ``gains``: (n_clicks,) per model, each a model's mean over the seeds;
    ``users``: (n_clicks,) who clicked."""
    return {
        "student_share_of_teacher": share_interval(gains["student"], gains["teacher"], users).to_dict(6),
        "student_minus_no_kd": lead_interval(gains["student"], gains["student_no_kd"], users).to_dict(6),
        "teacher_minus_popularity": lead_interval(gains["teacher"], gains["popularity"], users).to_dict(6),
    }


def report_test_window(
    runs: list[SeedRun], ds: Dataset, tables: ContentTables, clicks: list[TestClick]
) -> dict[str, Any]:
    """The popularity baseline (clicks so far), every model's figures over the seeds, and the paired
    comparisons of the models' seed-mean gains on the test clicks."""
    popularity = popularity_gains(ds.click_log, clicks)
    with tempfile.TemporaryDirectory(prefix="streamrec-onnx-") as tmp:
        evaluated = [evaluate_seed(run, ds, tables, clicks, Path(tmp)) for run in runs]
    seeds = [run.seed for run in runs]
    report: dict[str, Any] = {"popularity": ranking_figures(popularity)}
    for name in MODELS:
        report[name] = over_seeds([figures[name] for figures, _ in evaluated], seeds)
    mean_gains = {name: np.mean([gains[name] for _, gains in evaluated], axis=0) for name in MODELS}
    comparisons = paired_comparisons({**mean_gains, "popularity": popularity}, np.array([c.user for c in clicks]))
    share = comparisons["student_share_of_teacher"]
    report["student"]["ndcg_share_of_teacher"] = share["estimate"]  # of the seed means, as its interval
    report["student"]["ndcg_share_of_teacher_95ci"] = [share["low"], share["high"]]
    report["comparisons"] = comparisons
    report["seeds"] = {"trained": seeds, "registered": seeds[0]}
    return report


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The test figures of ``report_test_window`` as a few lines for a person."""

    def figure(model: dict[str, Any], key: str) -> str:
        spread = model.get("spread", {}).get(key)
        return f"{model[key]:.4f}" + (f" [{spread['min']:.4f}, {spread['max']:.4f}]" if spread else "")

    c = report["comparisons"]
    share, lead, over_pop = c["student_share_of_teacher"], c["student_minus_no_kd"], c["teacher_minus_popularity"]
    lines = [
        f"test window, {report['_run']['test_clicks_ranked']} clicks of {share['users']} users; "
        f"models: mean over seeds {report['seeds']['trained']} [min, max]:",
        f"  {'popularity (clicks so far)':<27} recall@10 {figure(report['popularity'], 'recall@10')}  "
        f"ndcg@10 {figure(report['popularity'], 'ndcg@10')}",
    ]
    lines += [
        f"  {name:<27} recall@10 {figure(report[name], 'recall@10')}  ndcg@10 {figure(report[name], 'ndcg@10')}"
        f"  auc {figure(report[name], 'auc_click')}"
        for name in MODELS
    ]
    lines += [
        f"student / teacher ndcg@10: {share['estimate']:.1%} (95 %, resampling users: "
        f"{share['low']:.1%} to {share['high']:.1%})",
        f"student - student_no_kd ndcg@10: {lead['estimate']:+.4f} [{lead['low']:+.4f}, {lead['high']:+.4f}]",
        f"teacher - popularity ndcg@10: {over_pop['estimate']:+.4f} [{over_pop['low']:+.4f}, {over_pop['high']:+.4f}]",
        f"registered: the student of seed {report['seeds']['registered']}",
    ]
    return lines


def train_once(
    cfg: Config,
    events: Iterable[Event],
    registry_root: Path | None = None,
    seeds: int = 3,
) -> dict[str, Any]:
    """Train teacher, student and student_no_kd under ``seeds`` training seeds on one dataset; report
    every test figure's mean and spread over the seeds; register and (gate permitting) promote the
    first seed's student. The data, the clicks and the previous teacher are the same for every seed."""
    start = time.perf_counter()
    seconds: dict[str, float] = {}
    lap = Lap(seconds)
    root = Path(registry_root or cfg.registry.root)
    p = _prepare(cfg, events, root, test_window=True)
    ds, tables = p.ds, p.tables
    clicks = sample_clicks(ds.test_clicks, cfg.train.test_clicks, cfg.train.seed)
    log.info(
        f"dataset: {len(ds.train)} train / {len(ds.validation)} validation / {len(ds.test)} test rows; ids from the "
        f"{ds.train_events} training-window events: {len(ds.catalogue.users) - 1} users, {len(ds.catalogue.items) - 1} "
        f"items ({len(ds.catalogue.later_users) - 1} users and {len(ds.catalogue.later_items) - 1} items first logged "
        f"later take the cold path); {len(clicks)} test clicks"
    )
    lap("dataset")
    runs = [train_seed(p, seed) for seed in training_seeds(cfg, seeds)]
    lap("training")
    if secondary_rank():
        return {}  # under torchrun, rank 0 alone evaluates, exports and registers
    report = report_test_window(runs, ds, tables, clicks)
    lap("evaluation")
    registered = runs[0]
    report["teacher"]["warm_start"] = registered.warm
    report["registry"], report["student"]["int8"] = _publish(
        p, registered.models, report["student"]["by_seed"][0], root
    )
    report["registry"]["seed"] = registered.seed
    lap("export_and_register")
    report["_run"] = _run_figures(start, seconds, runs, ds, clicks, cfg)
    for line in summary_lines(report):
        log.info(line)
    log.info(
        f"teacher + student + export (seed {registered.seed}): {report['_run']['teacher_student_export_seconds']:.0f} "
        f"s (all of this run, {len(runs)} seeds: {time.perf_counter() - start:.0f} s)"
    )
    return report


def _run_figures(
    start: float, seconds: dict[str, float], runs: list[SeedRun], ds: Dataset, clicks: list[TestClick], cfg: Config
) -> dict[str, Any]:
    """How long each step took, and the served path's share: what a retrain of the served model costs."""
    return {
        "model": "pointwise",
        **run_seconds(start, seconds, runs),
        "events": ds.events,
        "train_rows": len(ds.train),
        "train_events": ds.train_events,
        "test_clicks_ranked": len(clicks),
        "curriculum": cfg.train.curriculum,
    }


class TimedSeed(Protocol):
    seed: int
    seconds: dict[str, float]  # by step; "teacher" and "student" among them


def run_seconds(start: float, seconds: dict[str, float], runs: Sequence[TimedSeed]) -> dict[str, Any]:
    """A run's seconds in all, by step and by seed, and its served path's: the dataset, the first
    seed's teacher and student, export and registration (what a retrain of the served model costs)."""
    registered = runs[0]
    served_path = seconds["dataset"] + registered.seconds["teacher"] + registered.seconds["student"]
    return {
        "seconds": round(time.perf_counter() - start, 1),
        "teacher_student_export_seconds": round(served_path + seconds["export_and_register"], 1),
        "seconds_by_step": {k: round(v, 1) for k, v in seconds.items()},
        "seconds_by_seed": [{"seed": r.seed, **{k: round(v, 1) for k, v in r.seconds.items()}} for r in runs],
    }


def retrain_served_student(cfg: Config, events: Iterable[Event], registry_root: Path) -> dict[str, Any]:
    """A live system's periodic retrain: ``train_once``'s steps for the registered seed alone (the
    teacher warm-started from the previous one, the distilled student, exported, registered and
    promoted behind the gate), without the baseline and the test window: nothing there is needed to serve."""
    start = time.perf_counter()
    p = _prepare(cfg, events, registry_root)
    teacher, warm, student = train_served(p, cfg.train.seed, Lap({}))
    registry, int8 = _publish(p, {"teacher": teacher, "student": student}, {}, registry_root)
    return {
        "student": {"int8": int8},
        "teacher": {"warm_start": warm},
        "registry": registry,
        "_run": {"model": "pointwise", "seconds": round(time.perf_counter() - start, 1), "events": p.ds.events},
    }


def require_split(cfg: Config, ds: Dataset, test_window: bool) -> None:
    """Refuses, before any training, a split the pointwise models cannot use: they stop and are
    selected on the validation rows, and a ``test_window`` report ranks the test rows."""
    needed = [("validation", ds.validation)] + ([("test", ds.test)] if test_window else [])
    for name, rows in needed:
        if not len(rows):
            share = getattr(cfg.train, f"{name}_share")
            raise ConfigError(
                f"no {name} rows in this split (train.{name}_share={share}, {ds.events} events): "
                f"raise train.{name}_share or train on a longer log"
            )


def _prepare(cfg: Config, events: Iterable[Event], root: Path, test_window: bool = False) -> Prepared:
    torch.set_num_threads(cfg.train.threads)
    ds = dataset_from_config(cfg, events)
    require_split(cfg, ds, test_window)
    return Prepared(cfg, ds, ContentTables(ds.catalogue), _previous_teacher(cfg, root))


def _publish(
    p: Prepared, models: dict[str, Trained], test_figures: dict[str, Any], root: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Register (and, gate permitting, promote) the student; keep the teacher for the next version's warm start."""
    registered = _register(p.cfg, p.ds, p.tables, models["student"].model, test_figures, root)
    save_checkpoint(root, models["teacher"].model, p.ds.catalogue)
    return registered


def _distilled_student(cfg: Config, ds: Dataset, tables: ContentTables, teacher: Teacher, seed: int) -> Trained:
    """The served student: distilled from ``teacher`` with ``SERVED_KD``."""
    candidates = SERVED_KD.candidates if SERVED_KD.rank else 0  # the candidate lists serve only the ranking loss
    targets = teacher_targets(teacher, tables, ds.train, candidates, len(ds.catalogue.items), seed)
    return train_student(ds, tables, cfg, SERVED_KD, teacher, targets, seed=seed)


def _previous_teacher(cfg: Config, root: Path) -> PreviousTeacher | None:
    """The teacher kept beside the registry when ``train.warm_start`` and there is one that loads; a
    corrupt one is logged and costs the warm start, never the run."""
    if not cfg.train.warm_start:
        return None
    try:
        return load_checkpoint(root)
    except CheckpointError as exc:
        log.warning("%s; training the teacher cold", exc)
        return None


def _teacher_for_this_version(
    cfg: Config,
    ds: Dataset,
    tables: ContentTables,
    previous: PreviousTeacher | None,
    seed: int | None = None,
) -> tuple[Trained, dict[str, Any]]:
    """Warm-started from ``previous`` when it fits this architecture; cold otherwise."""
    if previous is not None:
        try:
            model, counts = warm_teacher(ds, *previous)
        except (RuntimeError, KeyError, IndexError) as exc:
            log.warning("the previous teacher does not fit this architecture (%s); training the teacher cold", exc)
        else:
            return (
                train_teacher(ds, tables, cfg, WARM_CURRICULUM, model=model, seed=seed),
                {"warm_started": True, **counts},
            )
    return train_teacher(ds, tables, cfg, Curriculum(cfg.train.curriculum), seed=seed), {"warm_started": False}


# A warm-started teacher trains without the curriculum: easy-first epochs start an untrained model
# and undo a trained one's calibration (docs/explanation/offline.md, "Warm start").
WARM_CURRICULUM = Curriculum(enabled=False)


def warm_teacher(
    ds: Dataset, previous: dict[str, torch.Tensor], previous_catalogue: Catalogue
) -> tuple[Teacher, dict[str, int]]:
    """A new teacher for ``ds`` holding ``previous``'s weights, mapped across catalogues
    (``warm_start``), and the counts of what was copied or built from content. Raises what
    ``warm_start`` raises when ``previous`` is another architecture."""
    model = Teacher(*model_sizes(ds))
    return model, warm_start(model, previous, previous_catalogue, ds.catalogue)


class Lap:
    """Adds the time since the previous call to ``seconds[step]`` (steps may recur)."""

    def __init__(self, seconds: dict[str, float]) -> None:
        self.seconds, self.last = seconds, time.perf_counter()

    def __call__(self, step: str) -> None:
        now = time.perf_counter()
        self.seconds[step] = self.seconds.get(step, 0.0) + now - self.last
        self.last = now


def _register(
    cfg: Config,
    ds: Dataset,
    tables: ContentTables,
    student: nn.Module,
    test_figures: dict[str, Any],
    root: Path,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Stage the student (export + parity), register it with its validation and ``test_figures``,
    promote it if it passes the gate. Returns the registry's answer and the int8 decision."""
    held_out = tables.arrays(ds.validation.user[:2000], ds.validation.item[:2000], ds.validation.recent[:2000])
    val_click, _ = rows_logits(student, tables, ds.validation)
    val_clicks = sample_clicks(ds.validation_clicks, cfg.train.validation_clicks, cfg.train.seed)
    metrics = {
        "validation": {
            "auc_click": auc(val_click, ds.validation.click),
            "logloss_click": logloss(expit(val_click), ds.validation.click),
            **ranking(torch_scorer(student), val_clicks, tables),
        },
        "test": {k: v for k, v in test_figures.items() if isinstance(v, (int, float)) and k != "seed"},
    }
    registry = Registry(root, keep=cfg.registry.keep)
    with tempfile.TemporaryDirectory(prefix="streamrec-stage-") as tmp:
        manifest = stage(student, "student", Path(tmp), ds.catalogue, tables, held_out, ds.window, ds.events, metrics)
        int8 = quantise_if_harmless(Path(tmp) / manifest.onnx_file, val_clicks, tables, held_out)
        log.info(
            f"int8 quantisation {'kept' if int8.kept else 'not kept'}: ndcg@10 {int8.ndcg_float:.4f} -> "
            f"{int8.ndcg_int8:.4f}, {int8.ms_float:.2f} -> {int8.ms_int8:.2f} ms per 1,000 rows"
        )
        if int8.kept:
            manifest = mark_quantised(Path(tmp), manifest)
        manifest = registry.register(Path(tmp))
    result = registry.promote(manifest.version, QualityGate(cfg.registry.gate_metric, cfg.registry.gate_tolerance))
    outcome = "promoted" if result.promoted else "kept out"
    log.info("registry: version %d %s (%s)", manifest.version, outcome, result.reason)
    return (
        {"root": str(registry.root), "version": manifest.version, "promoted": result.promoted, "reason": result.reason},
        int8.as_dict(),
    )
