"""One training run: events -> dataset -> teacher -> distilled student -> ONNX -> registry.

The figures of every model come from the same test window and the same sampled test clicks, so
teacher, students and the popularity baseline are compared on equal terms.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import torch
from scipy.special import expit
from torch import nn

from offline.compress import quantise_if_harmless
from offline.curriculum import Curriculum, popularity_difficulty
from offline.distill import KDWeights
from offline.evaluate import (
    Scorer,
    auc,
    click_gains,
    logloss,
    popularity_scorer,
    ranking,
    ranking_figures,
    sample_clicks,
    share_interval,
)
from offline.export import export_onnx, ms_per_1000, parity, stage
from offline.features import ContentTables
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
from offline.samples import Catalogue, Dataset, Groups, Rows, build_dataset
from offline.student import Student
from offline.teacher import Teacher
from offline.teacher_checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from offline.warm_start import warm_start
from stream.config import Config
from stream.events import Event
from stream.model_artifact import sha256_file, write_manifest

# Distillation used for the served student, chosen by validation NDCG@10 in the ablation on ml-100k
# (README, "Ablations"): soft targets + hint + the listwise ranking loss.
SERVED_KD = KDWeights(soft=0.5, hint=0.1, rank=3.0, temperature=1.0)

@dataclass
class Trained:
    model: nn.Module
    fit: FitResult


def settings(cfg: Config, epochs: int | None = None) -> FitSettings:
    t = cfg.train
    return FitSettings(epochs=epochs or t.epochs, batch_size=t.batch_size, learning_rate=t.learning_rate,
                       weight_decay=t.weight_decay, patience=t.patience, seed=t.seed)


def dataset_from_config(cfg: Config, events: Iterable[Event]) -> Dataset:
    """Rows and split as ``cfg.train`` describes them (one place for every training command)."""
    t = cfg.train
    return build_dataset(events, recent_len=t.recent_items, negatives=t.sampled_negatives,
                         validation_share=t.validation_share, test_share=t.test_share, seed=t.seed)


def model_sizes(ds: Dataset) -> tuple[int, int, int, int]:
    c = ds.catalogue
    return len(c.users), len(c.items), len(c.item_tokens), len(c.user_tokens)


def train_teacher(ds: Dataset, tables: ContentTables, cfg: Config, curriculum: Curriculum,
                  task: str = "multi", model: Teacher | None = None) -> Trained:
    """Fit a teacher (a fresh one unless ``model`` is given, e.g. warm-started)."""
    torch.manual_seed(cfg.train.seed)  # reproducible initialisation (torch seeds itself randomly)
    teacher = model or Teacher(*model_sizes(ds))
    loss = TeacherLoss(teacher, tables, ds.train, ds.validation, task, cfg.train.teacher_listwise)
    groups = Groups.of(ds.train)
    result = fit(teacher, loss.batch, loss.validate, groups, popularity_difficulty(ds.train, groups), settings(cfg),
                 curriculum, f"teacher[{task}]")
    return Trained(teacher, result)


def train_student(ds: Dataset, tables: ContentTables, cfg: Config, kd: KDWeights, teacher: Teacher | None,
                  targets=None, label: str = "student") -> Trained:  # noqa: ANN001 - TeacherTargets
    torch.manual_seed(cfg.train.seed)
    student = Student(*model_sizes(ds))
    loss = StudentLoss(student, tables, ds.train, ds.validation, kd, targets if kd.uses_teacher else None,
                       teacher.hint_dim if teacher is not None else 1)
    # The student is selected by what it is served for: NDCG@10 on the validation window's clicks
    # (label log-loss picks early epochs of distilled students that rank worse), on
    # ``train.validation_clicks`` clicks: with 1,000, one epoch's NDCG moved by about as much as
    # epochs differ; more would be ranked every epoch.
    val_clicks = sample_clicks(ds.validation_clicks, cfg.train.validation_clicks, cfg.train.seed)

    def negative_ndcg() -> float:
        return -ranking(torch_scorer(student, tables), val_clicks, tables)["ndcg@10"]

    groups = Groups.of(ds.train)
    result = fit(loss.net, loss.batch, negative_ndcg, groups, popularity_difficulty(ds.train, groups),
                 settings(cfg, epochs=cfg.train.epochs + 2), Curriculum(cfg.train.curriculum), label)
    return Trained(student, result)


def torch_scorer(model: nn.Module, tables: ContentTables) -> Scorer:
    def score(inputs: dict[str, np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            x = tables.tensors(inputs["user"], inputs["item"], np.ascontiguousarray(inputs["recent"]))
            return model(x)[0].numpy()
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


def test_window_figures(model: nn.Module, click_logit: np.ndarray, ds: Dataset, tables: ContentTables, clicks,
                        onnx_dir: Path, name: str) -> tuple[dict[str, Any], np.ndarray]:  # noqa: ANN001 - list[TestClick]
    """``click_logit``: the model's (n_test,) logits on the test rows. Returns the figures and the
    (n_clicks,) per-click NDCG@10 gains behind them."""
    gains = click_gains(torch_scorer(model, tables), clicks, tables)
    figures = {"auc_click": auc(click_logit, ds.test.click), "logloss_click": logloss(expit(click_logit), ds.test.click),
               **ranking_figures(gains), "params": n_params(model)}
    rows = tables.arrays(ds.test.user[:1000], ds.test.item[:1000], ds.test.recent[:1000])
    path = onnx_dir / f"{name}.onnx"
    export_onnx(model, path, rows)
    figures["onnx_ms_per_1000"] = ms_per_1000(path, rows)
    figures["onnx_parity_max_abs_diff"] = parity(model, path, rows)
    return figures, gains


def train_once(cfg: Config, events: Iterable[Event], log: Callable[[str], None] = print,
               registry_root: Path | None = None) -> dict[str, Any]:
    """Train teacher, student and student_no_kd; register and (gate permitting) promote the student."""
    start = time.perf_counter()
    seconds: dict[str, float] = {}
    lap = _Lap(seconds)
    torch.set_num_threads(cfg.train.threads)
    t = cfg.train
    ds = dataset_from_config(cfg, events)
    tables = ContentTables(ds.catalogue)
    clicks = sample_clicks(ds.test_clicks, t.test_clicks, t.seed)
    log(f"dataset: {len(ds.train)} train / {len(ds.validation)} validation / {len(ds.test)} test rows, "
        f"{len(clicks)} test clicks ranked against {len(ds.catalogue.items) - 1} items")
    lap("dataset")
    report: dict[str, Any] = {"popularity": ranking(popularity_scorer(ds.train.item, ds.train.click), clicks, tables)}
    lap("evaluation")

    root = Path(registry_root or cfg.registry.root)
    teacher, warm = _teacher_for_this_version(cfg, ds, tables, root, log)
    lap("teacher")
    log(f"teacher ({'warm-started' if warm['warm_started'] else 'cold'}): best epoch {teacher.fit.best_epoch + 1}, "
        f"validation loss {teacher.fit.best_loss:.4f}, {teacher.fit.seconds:.0f} s")
    candidates = SERVED_KD.candidates if SERVED_KD.rank else 0  # the candidate lists serve only the ranking loss
    targets = teacher_targets(teacher.model, tables, ds.train, candidates, len(ds.catalogue.items), t.seed)
    student = train_student(ds, tables, cfg, SERVED_KD, teacher.model, targets)
    lap("student")
    log(f"student: best epoch {student.fit.best_epoch + 1}, {student.fit.seconds:.0f} s")
    no_kd = train_student(ds, tables, cfg, KDWeights.labels_only(), None, label="student_no_kd")
    lap("student_no_kd")
    log(f"student_no_kd: best epoch {no_kd.fit.best_epoch + 1}, {no_kd.fit.seconds:.0f} s")

    if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_rank() > 0:
        return {}  # under torchrun, rank 0 alone evaluates, exports and registers
    models = {"teacher": teacher, "student": student, "student_no_kd": no_kd}
    test_logits = {name: rows_logits(trained.model, tables, ds.test)[0] for name, trained in models.items()}
    gains: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory(prefix="streamrec-onnx-") as tmp:
        for name, trained in models.items():
            report[name], gains[name] = test_window_figures(trained.model, test_logits[name], ds, tables, clicks,
                                                            Path(tmp), name)
            report[name]["best_epoch"] = trained.fit.best_epoch + 1
            if name == "teacher":
                report[name]["validation_loss"] = trained.fit.best_loss
            else:  # students are selected by validation NDCG@10 (fit minimises its negative)
                report[name]["validation_ndcg@10"] = -trained.fit.best_loss
    for name in ("student", "student_no_kd"):
        report[name]["kl_teacher_student"] = binary_kl(expit(test_logits["teacher"]), expit(test_logits[name]))
    report["student"]["ndcg_share_of_teacher"] = report["student"]["ndcg@10"] / max(report["teacher"]["ndcg@10"], 1e-12)
    report["student"]["ndcg_share_of_teacher_95ci"] = share_interval(gains["student"], gains["teacher"], t.seed)
    report["student"]["params_share_of_teacher"] = report["student"]["params"] / report["teacher"]["params"]
    report["student"]["speedup_vs_teacher"] = report["teacher"]["onnx_ms_per_1000"] / report["student"]["onnx_ms_per_1000"]
    lap("evaluation")
    report["teacher"]["warm_start"] = warm
    report["registry"] = _register(cfg, ds, tables, student.model, report, root, log)
    save_checkpoint(root, teacher.model, ds.catalogue)  # the next version warm-starts from this teacher
    lap("export_and_register")
    served_path = seconds["dataset"] + seconds["teacher"] + seconds["student"] + seconds["export_and_register"]
    log(f"teacher + student + export: {served_path:.0f} s (all of this run: {time.perf_counter() - start:.0f} s)")
    report["_run"] = {"seconds": round(time.perf_counter() - start, 1), "events": ds.events,
                      "teacher_student_export_seconds": round(served_path, 1),
                      "seconds_by_step": {k: round(v, 1) for k, v in seconds.items()},
                      "train_rows": len(ds.train), "test_clicks_ranked": len(clicks), "curriculum": t.curriculum}
    return report


def retrain_served_student(cfg: Config, events: Iterable[Event], registry_root: Path,
                           log: Callable[[str], None] = print) -> dict[str, Any]:
    """A live system's periodic retrain: the teacher (warm-started from the previous one) and the
    distilled student, exported, registered and promoted behind the gate. Unlike ``train_once`` it
    trains no baseline and ranks no test window: nothing here is needed to serve."""
    start = time.perf_counter()
    torch.set_num_threads(cfg.train.threads)
    ds = dataset_from_config(cfg, events)
    tables = ContentTables(ds.catalogue)
    teacher, warm = _teacher_for_this_version(cfg, ds, tables, registry_root, log)
    candidates = SERVED_KD.candidates if SERVED_KD.rank else 0
    targets = teacher_targets(teacher.model, tables, ds.train, candidates, len(ds.catalogue.items), cfg.train.seed)
    student = train_student(ds, tables, cfg, SERVED_KD, teacher.model, targets)
    report: dict[str, Any] = {"student": {}, "teacher": {"warm_start": warm}}
    report["registry"] = _register(cfg, ds, tables, student.model, report, registry_root, log)
    save_checkpoint(registry_root, teacher.model, ds.catalogue)
    report["_run"] = {"seconds": round(time.perf_counter() - start, 1), "events": ds.events}
    return report


def _teacher_for_this_version(cfg: Config, ds: Dataset, tables: ContentTables, root: Path,
                              log: Callable[[str], None]) -> tuple[Trained, dict[str, Any]]:
    """Warm-started from the previous version's teacher when there is a usable one (and
    ``train.warm_start``); cold otherwise. A missing, corrupt or differently shaped previous
    teacher costs the warm start, never the run."""
    previous = None
    if cfg.train.warm_start:
        try:
            previous = load_checkpoint(root)
        except CheckpointError as exc:
            log(f"{exc}; training the teacher cold")
    if previous is not None:
        try:
            model, counts = warm_teacher(ds, *previous)
        except (RuntimeError, KeyError, IndexError) as exc:
            log(f"the previous teacher does not fit this architecture ({exc}); training the teacher cold")
        else:
            return train_teacher(ds, tables, cfg, WARM_CURRICULUM, model=model), {"warm_started": True, **counts}
    return train_teacher(ds, tables, cfg, Curriculum(cfg.train.curriculum)), {"warm_started": False}


# A warm-started teacher trains without the curriculum: easy-first epochs start an untrained model
# and undo a trained one's calibration (README, "Warm start").
WARM_CURRICULUM = Curriculum(enabled=False)


def warm_teacher(ds: Dataset, previous: dict[str, torch.Tensor], previous_catalogue: Catalogue) -> tuple[Teacher, dict[str, int]]:
    """A new teacher for ``ds`` holding ``previous``'s weights, mapped across catalogues
    (``warm_start``), and the counts of what was copied or built from content. Raises what
    ``warm_start`` raises when ``previous`` is another architecture."""
    model = Teacher(*model_sizes(ds))
    return model, warm_start(model, previous, previous_catalogue, ds.catalogue)


class _Lap:
    """Adds the time since the previous call to ``seconds[step]`` (steps may recur)."""

    def __init__(self, seconds: dict[str, float]) -> None:
        self.seconds, self.last = seconds, time.perf_counter()

    def __call__(self, step: str) -> None:
        now = time.perf_counter()
        self.seconds[step] = self.seconds.get(step, 0.0) + now - self.last
        self.last = now


def _register(cfg: Config, ds: Dataset, tables: ContentTables, student: nn.Module, report: dict[str, Any],
              root: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """Stage the student (export + parity), register it, promote it if it passes the gate."""
    held_out = tables.arrays(ds.validation.user[:2000], ds.validation.item[:2000], ds.validation.recent[:2000])
    val_click, _ = rows_logits(student, tables, ds.validation)
    val_clicks = sample_clicks(ds.validation_clicks, cfg.train.validation_clicks, cfg.train.seed)
    metrics = {
        "validation": {"auc_click": auc(val_click, ds.validation.click),
                       "logloss_click": logloss(expit(val_click), ds.validation.click),
                       **ranking(torch_scorer(student, tables), val_clicks, tables)},
        "test": {k: v for k, v in report["student"].items() if isinstance(v, (int, float))},
    }
    registry = Registry(root, keep=cfg.registry.keep)
    with tempfile.TemporaryDirectory(prefix="streamrec-stage-") as tmp:
        manifest = stage(student, "student", Path(tmp), ds.catalogue, tables, held_out, ds.window, ds.events, metrics)
        int8 = quantise_if_harmless(Path(tmp) / manifest.onnx_file, val_clicks, tables, held_out)
        report["student"]["int8"] = int8.as_dict()
        log(f"int8 quantisation {'kept' if int8.kept else 'not kept'}: ndcg@10 {int8.ndcg_float:.4f} -> "
            f"{int8.ndcg_int8:.4f}, {int8.ms_float:.2f} -> {int8.ms_int8:.2f} ms per 1,000 rows")
        if int8.kept:  # parity stays the float graph's against torch; the manifest says it was quantised
            manifest = msgspec.structs.replace(manifest, onnx_sha256=sha256_file(Path(tmp) / manifest.onnx_file),
                                               extra={**manifest.extra, "quantised": "int8-dynamic"})
            write_manifest(Path(tmp), manifest)
        manifest = registry.register(Path(tmp))
    result = registry.promote(manifest.version, QualityGate(cfg.registry.gate_metric, cfg.registry.gate_tolerance))
    log(f"registry: version {manifest.version} {'promoted' if result.promoted else 'kept out'} ({result.reason})")
    return {"root": str(registry.root), "version": manifest.version, "promoted": result.promoted,
            "reason": result.reason}
