"""One training run of the sequence models (``train.model = "sequence"``): events -> sequences ->
teacher -> distilled student -> ONNX -> registry.

The served path, in order, and what a failure at each step leaves:

1. the split and its sequences (``offline.sequence_data``); nothing written;
2. the teacher: warm-started from the previous sequence teacher kept beside the registry when one
   loads and fits, trained cold otherwise (a checkpoint that does not load costs the warm start,
   never the run);
3. the student, distilled from it (``offline.sequence_distill``), then pruned where that is worth
   keeping (``offline.sequence_compress``);
4. export, parity check and manifest in a temporary directory (``stage_sequence``), the graph
   quantised to int8 where that is worth keeping, registration (atomic: the version appears whole
   or not at all), promotion if the quality gate passes;
5. the teacher saved as the next version's warm start (atomic rename), only after the student is
   registered: a run that fails before leaves the previous teacher in place.

``train_once`` does this for ``seeds`` training seeds (the first one's student is registered), adds
the test window's figures (the served rule, the popularity baseline, user-level intervals) and the
ablations on the validation part (``offline.sequence_ablation``); ``retrain`` is the periodic
trainer's served path alone.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from offline.compress import mark_quantised, worth_keeping
from offline.curriculum import Curriculum
from offline.data_parallel import secondary_rank
from offline.evaluate import popularity_gains, ranking_figures, sample_clicks, share_interval
from offline.pipeline import Lap, dataset_from_config, over_seeds, run_seconds, training_seeds
from offline.registry import QualityGate, Registry
from offline.samples import Catalogue, Dataset
from offline.sequence_compress import narrower, pruned_channels, quantise_sequence_if_harmless
from offline.sequence_data import SequenceData, ServedNDCG, ServedPoints, sequence_data, served_gains
from offline.sequence_distill import SequenceDistillation, StudentSettings
from offline.sequence_export import models_ms_per_request, request_inputs, stage_sequence, timing_requests
from offline.sequence_fit import SequenceFitResult, SequenceFitSettings, fit_sequence_model
from offline.sequence_model import TEACHER, SequenceModel, Shape
from offline.teacher_checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from offline.warm_start import warm_start
from stream.config import Config
from stream.evaluation.paired import lead_interval
from stream.events import Event
from stream.model_artifact import Manifest, TrainingWindow

log = logging.getLogger(__name__)

CHECKPOINT = "sequence-teacher"  # registry_root/sequence-teacher/: the previous teacher, for the warm start
ITEM_TOKEN_WIDTH = 12  # content tokens per item the models embed
# The sequence model's vocabulary tables, for the warm start (its item_tokens buffer describes the
# new catalogue and is never copied).
TABLES = {"item.weight": "items", "item_bias.weight": "items", "token.weight": "item_tokens"}
PRUNE_SHARE = 0.2  # of the student's width: 2 of its 10 channels
PRUNE_EPOCHS = 3  # of distillation from the pruned weights
TIMED_REQUESTS = 200  # histories each ONNX timing runs


@dataclass
class Prepared:
    """What every run starts from: the split (``build_dataset``'s), its sequences, the previous teacher."""

    cfg: Config
    ds: Dataset
    data: SequenceData
    previous: tuple[dict[str, torch.Tensor], Catalogue] | None

    def new_model(self, shape: Shape, seed: int) -> SequenceModel:
        return new_model(self.ds.catalogue, self.cfg.state.sequence_tokens, shape, seed)

    def validation(self) -> ServedNDCG:
        return ServedNDCG(self.data.validation)

    def ms_per_request(self, models: dict[str, SequenceModel], points: ServedPoints) -> dict[str, float]:
        """Each model's ONNX milliseconds per request: the first histories of ``points``, with as many
        candidates as a request ranks at most."""
        return models_ms_per_request(models, histories(points), self.cfg.serving.most_candidates())


@dataclass
class Fitted:
    model: SequenceModel
    fit: SequenceFitResult
    info: dict[str, Any]


def new_model(catalogue: Catalogue, length: int, shape: Shape, seed: int) -> SequenceModel:
    """An untrained sequence model of ``shape`` over ``catalogue``'s items, reading ``length`` tokens."""
    torch.manual_seed(seed)
    tokens = torch.from_numpy(catalogue.item_token_matrix(ITEM_TOKEN_WIDTH))
    return SequenceModel(tokens, len(catalogue.item_tokens), length, shape)


def prepare(cfg: Config, events: Iterable[Event], root: Path) -> Prepared:
    torch.set_num_threads(cfg.train.threads)
    events = list(events)
    ds = dataset_from_config(cfg, events)
    t = cfg.train
    data = sequence_data(
        events,
        ds,
        cfg.state.sequence_tokens,
        sample_clicks(ds.validation_clicks, t.validation_clicks, t.seed),
        sample_clicks(ds.test_clicks, t.test_clicks, t.seed),
    )
    return Prepared(cfg, ds, data, previous_teacher(cfg, root))


def previous_teacher(cfg: Config, root: Path) -> tuple[dict[str, torch.Tensor], Catalogue] | None:
    if not cfg.train.warm_start:
        return None
    try:
        return load_checkpoint(root, CHECKPOINT)
    except CheckpointError as exc:
        log.warning("%s; training the sequence teacher cold", exc)
        return None


def teacher_settings(cfg: Config, seed: int, warm: bool = False) -> SequenceFitSettings:
    """A warm-started teacher trains without the curriculum, as the pointwise one does
    (``offline.pipeline.WARM_CURRICULUM``): easy-first epochs start an untrained model."""
    return SequenceFitSettings(
        epochs=cfg.train.sequence_epochs,
        seed=seed,
        curriculum=Curriculum(enabled=cfg.train.curriculum and not warm),
    )


def fit_teacher(p: Prepared, settings: SequenceFitSettings, model: SequenceModel | None = None) -> Fitted:
    model = model or p.new_model(TEACHER, settings.seed)
    fit = fit_sequence_model(model, p.data.train, p.validation(), settings)
    return Fitted(model, fit, {"curriculum": settings.curriculum.enabled, "conversion": settings.conversion_weight})


def teacher_for_this_version(p: Prepared, seed: int) -> Fitted:
    """Warm-started from the previous sequence teacher when it fits this architecture; cold otherwise."""
    if p.previous is not None:
        model = p.new_model(TEACHER, seed)
        try:
            counts = warm_start(model, *p.previous, p.ds.catalogue, TABLES, frozenset({"item_tokens"}))
        except (RuntimeError, KeyError, IndexError) as exc:
            log.warning("the previous sequence teacher does not fit (%s); training it cold", exc)
        else:
            fitted = fit_teacher(p, teacher_settings(p.cfg, seed, warm=True), model)
            fitted.info.update(warm_started=True, **counts)
            return fitted
    fitted = fit_teacher(p, teacher_settings(p.cfg, seed))
    fitted.info["warm_started"] = False
    return fitted


def distil(p: Prepared, teacher: SequenceModel, student: StudentSettings) -> Fitted:
    model = p.new_model(student.shape, student.fit.seed)
    loss = SequenceDistillation(teacher, student.shape.dim, student.kd, student.fit.conversion_weight)
    fit = fit_sequence_model(model, p.data.train, p.validation(), student.fit, loss)
    return Fitted(model, fit, {"kd": asdict(student.kd)})


def student_settings(cfg: Config, seed: int) -> StudentSettings:
    s = StudentSettings()
    return replace(s, fit=replace(s.fit, seed=seed, epochs=cfg.train.sequence_epochs))


@dataclass
class SeedRun:
    seed: int
    teacher: Fitted
    student: Fitted  # the served student: ``distilled``, pruned when that was worth keeping
    distilled: Fitted
    pruning: dict[str, Any]
    seconds: dict[str, float]


def train_seed(p: Prepared, seed: int) -> SeedRun:
    seconds: dict[str, float] = {}
    lap = Lap(seconds)
    teacher = teacher_for_this_version(p, seed)
    lap("teacher")
    log.info(
        "seed %d: sequence teacher (%s): best epoch %d of %d, %.0f s",
        seed,
        "warm-started" if teacher.info["warm_started"] else "cold",
        teacher.fit.best_epoch,
        teacher.fit.epochs,
        seconds["teacher"],
    )
    settings = student_settings(p.cfg, seed)
    student = distil(p, teacher.model, settings)
    log.info(
        "seed %d: sequence student: best epoch %d of %d, %.0f s",
        seed,
        student.fit.best_epoch,
        student.fit.epochs,
        student.fit.seconds,
    )
    served, pruning = prune_student(p, teacher.model, student, settings)
    lap("student")
    return SeedRun(seed, teacher, served, student, pruning, seconds)


def prune_student(
    p: Prepared, teacher: SequenceModel, student: Fitted, settings: StudentSettings
) -> tuple[Fitted, dict[str, Any]]:
    """The student with the least important ``PRUNE_SHARE`` of its width pruned and distilled again
    (``offline.sequence_compress``) when ``worth_keeping`` says so, else the student as it was; the
    figures either way."""
    if not len(p.data.validation) or student.model.shape.dim < 2:
        why = "no validation clicks to judge it" if student.model.shape.dim >= 2 else "a width of 1"
        return student, {"kept": False, "note": f"not tried: {why}"}
    keep = pruned_channels(student.model, PRUNE_SHARE)
    model = narrower(student.model, keep)
    loss = SequenceDistillation(teacher, len(keep), settings.kd, settings.fit.conversion_weight)
    fit_settings = replace(settings.fit, epochs=min(PRUNE_EPOCHS, settings.fit.epochs), label="pruned sequence student")
    fit = fit_sequence_model(model, p.data.train, p.validation(), fit_settings, loss)
    if secondary_rank():  # rank 0 decides, on timings that no other rank's timing disturbs
        return student, {"kept": False, "note": "decided on rank 0"}
    ms = p.ms_per_request({"before": student.model, "after": model}, p.data.validation)
    before, after = max(student.fit.validation_ndcg), max(fit.validation_ndcg)
    kept = worth_keeping(before, after, ms["before"], ms["after"])
    figures = {
        "kept": kept,
        "width": [student.model.shape.dim, len(keep)],
        "params": [n_params(student.model), n_params(model)],
        "validation_ndcg@10": [before, after],
        "onnx_ms_per_request": [ms["before"], ms["after"]],
        "seconds": fit.seconds,
    }
    log.info(
        "pruning %d of %d channels %s: validation NDCG@10 %.4f -> %.4f, %.4f -> %.4f ms per request",
        student.model.shape.dim - len(keep),
        student.model.shape.dim,
        "kept" if kept else "not kept",
        before,
        after,
        ms["before"],
        ms["after"],
    )
    return (Fitted(model, fit, {**student.info, "pruned": True}) if kept else student), figures


def n_params(model: SequenceModel) -> int:
    return sum(w.numel() for w in model.parameters())


def histories(points: ServedPoints, n: int = TIMED_REQUESTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first ``n`` histories of ``points`` to time requests with; one without tokens if none."""
    if not len(points):
        empty = np.zeros((1, points.item.shape[1]), dtype=np.int64)
        return empty, empty, empty
    return points.item[:n], points.kind[:n], points.gap[:n]


def publish(
    p: Prepared, run: SeedRun, root: Path, test_figures: dict[str, float]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Stage (int8 if worth keeping), register and (gate permitting) promote the student; then keep
    its teacher for the next version's warm start. Returns the registry's outcome and the
    compression figures."""
    cfg, data = p.cfg, p.data
    metrics = {  # the quality gate compares versions on these (registry.gate_metric: ndcg@10 or recall@10)
        "validation": ranking_figures(served_gains(run.student.model, data.validation)),
        "test": {k: float(test_figures[k]) for k in ("recall@10", "ndcg@10") if k in test_figures},
    }
    window = TrainingWindow(start_ts_ms=p.ds.window[0], end_ts_ms=p.ds.window[1], events=p.ds.events)
    registry = Registry(root, keep=cfg.registry.keep)
    with tempfile.TemporaryDirectory(prefix="streamrec-stage-") as tmp:
        staged = stage_sequence(run.student.model, "student", Path(tmp), data.catalogue, example(data), window, metrics)
        int8 = quantise_staged(p, Path(tmp), staged)
        manifest = registry.register(Path(tmp))
    result = registry.promote(manifest.version, QualityGate(cfg.registry.gate_metric, cfg.registry.gate_tolerance))
    log.info(
        "registry: version %d %s (%s)", manifest.version, "promoted" if result.promoted else "kept out", result.reason
    )
    save_checkpoint(root, run.teacher.model, data.catalogue, CHECKPOINT)
    outcome = {"root": str(registry.root), "version": manifest.version, "promoted": result.promoted}
    return {**outcome, "reason": result.reason}, {"pruning": run.pruning, "int8": int8}


def quantise_staged(p: Prepared, directory: Path, manifest: Manifest) -> dict[str, Any]:
    """The staged graph replaced by its int8 form (and its manifest rewritten) when worth keeping;
    the figures either way."""
    data = p.data
    if not len(data.validation):
        return {"kept": False, "note": "not tried: no validation clicks to judge it"}
    rows = len(data.catalogue.items)
    requests = timing_requests(histories(data.validation), rows - 1, p.cfg.serving.most_candidates())
    int8 = quantise_sequence_if_harmless(directory / manifest.onnx_file, data.validation, rows, requests)
    log.info(
        "int8 quantisation %s: validation NDCG@10 %.4f -> %.4f, %.4f -> %.4f ms per request",
        "kept" if int8.kept else "not kept",
        int8.ndcg_float,
        int8.ndcg_int8,
        int8.ms_float,
        int8.ms_int8,
    )
    if int8.kept:
        mark_quantised(directory, manifest)
    return int8.as_dict()


def example(data: SequenceData, n_candidates: int = 100) -> dict[str, np.ndarray]:
    """A request for the export's parity check: the last validation point's history."""
    v = data.validation
    i = len(v) - 1 if len(v) else None
    zeros = np.zeros(v.item.shape[1], dtype=np.int64)
    history = (v.item[i], v.kind[i], v.gap[i]) if i is not None else (zeros, zeros, zeros)
    candidates = np.arange(1, min(n_candidates, len(data.catalogue.items) - 1) + 1)
    return request_inputs(*history, candidates)


def test_window(p: Prepared, runs: list[SeedRun]) -> dict[str, Any]:
    """The test clicks under the served rule: popularity (clicks so far), teacher and student over
    the seeds (``offline.pipeline.over_seeds``), and paired comparisons of the seed-mean gains with
    95 % intervals that resample users."""
    test = p.data.test
    per_seed: dict[str, list[dict[str, Any]]] = {"teacher": [], "student": []}
    gains: dict[str, list[np.ndarray]] = {"teacher": [], "student": []}
    for run in runs:
        models = {"teacher": run.teacher, "student": run.student}
        speed = p.ms_per_request({name: f.model for name, f in models.items()}, test)
        for name, fitted in models.items():
            g = served_gains(fitted.model, test)
            gains[name].append(g)
            per_seed[name].append(
                {
                    **ranking_figures(g),
                    "validation_ndcg@10": max(fitted.fit.validation_ndcg),
                    "best_epoch": fitted.fit.best_epoch,
                    "params": n_params(fitted.model),
                    "onnx_ms_per_request": speed[name],
                }
            )
    seeds = [run.seed for run in runs]
    report: dict[str, Any] = {name: over_seeds(figures, seeds) for name, figures in per_seed.items()}
    popularity = popularity_gains(p.ds.click_log, test.clicks)
    report["popularity"] = ranking_figures(popularity)
    mean = {name: np.mean(g, axis=0) for name, g in gains.items()}
    users = test.users()
    student, teacher = report["student"], report["teacher"]
    student["params_share_of_teacher"] = student["params"] / teacher["params"]
    student["speedup_vs_teacher"] = teacher["onnx_ms_per_request"] / student["onnx_ms_per_request"]
    report["comparisons"] = {
        "student_share_of_teacher": share_interval(mean["student"], mean["teacher"], users).to_dict(6),
        "teacher_minus_popularity": lead_interval(mean["teacher"], popularity, users).to_dict(6),
        "student_minus_popularity": lead_interval(mean["student"], popularity, users).to_dict(6),
    }
    report["seeds"] = {"trained": seeds, "registered": seeds[0]}
    return report


def evaluate_and_publish(p: Prepared, runs: list[SeedRun], root: Path, lap: Lap) -> dict[str, Any]:
    """The test window's report, with the first seed's student registered and its teacher kept."""
    report = test_window(p, runs)
    lap("evaluation")
    registered = runs[0]
    report["teacher"]["warm_start"] = {k: v for k, v in registered.teacher.info.items() if k != "conversion"}
    report["registry"], report["compression"] = publish(p, registered, root, report["student"]["by_seed"][0])
    lap("export_and_register")
    return report


def train_once(
    cfg: Config, events: Iterable[Event], registry_root: Path, seeds: int = 3, ablations: bool = True
) -> dict[str, Any]:
    """Teacher and student under ``seeds`` training seeds; the test window's figures over them; the
    first seed's student registered (gate permitting, promoted) and its teacher kept; then, unless
    ``ablations`` is false, each ablation's figure on the validation part. Under ``torchrun`` every
    rank trains (``fit_sequence_model`` is data-parallel) and ranks other than 0 return {}."""
    from offline.sequence_ablation import run_ablations

    start = time.perf_counter()
    seconds: dict[str, float] = {}
    lap = Lap(seconds)
    root = Path(registry_root)
    p = prepare(cfg, events, root)
    lap("dataset")
    log.info(
        "sequences: %d training windows of %d tokens; %d validation and %d test clicks ranked",
        len(p.data.train),
        cfg.state.sequence_tokens,
        len(p.data.validation),
        len(p.data.test),
    )
    runs = [train_seed(p, seed) for seed in training_seeds(cfg, seeds)]
    lap("training")
    registered = runs[0]
    # Registered before the ablations, which a failure or a stop may cut short. Under torchrun rank
    # 0 alone evaluates and registers, while the other ranks wait in the ablations' first
    # collective: their fits are data-parallel too.
    report: dict[str, Any] = {} if secondary_rank() else evaluate_and_publish(p, runs, root, lap)
    if ablations:
        report["ablations"] = run_ablations(p, registered)
        lap("ablations")
    if secondary_rank():
        return {}
    report["_run"] = {
        "model": "sequence",
        **run_seconds(start, seconds, runs),
        "events": p.ds.events,
        "test_clicks_ranked": len(p.data.test),
    }
    for line in summary_lines(report):
        log.info(line)
    return report


def retrain(cfg: Config, events: Iterable[Event], registry_root: Path) -> dict[str, Any]:
    """The periodic trainer's run: the served path for ``train.seed`` alone, no test window."""
    start = time.perf_counter()
    p = prepare(cfg, events, registry_root)
    run = train_seed(p, cfg.train.seed)
    registry, compression = publish(p, run, registry_root, {})
    return {
        "teacher": {"warm_start": {k: v for k, v in run.teacher.info.items() if k != "conversion"}},
        "registry": registry,
        "compression": compression,
        "_run": {"model": "sequence", "seconds": round(time.perf_counter() - start, 1), "events": p.ds.events},
    }


def summary_lines(report: dict[str, Any]) -> list[str]:
    c = report["comparisons"]
    share = c["student_share_of_teacher"]
    lines = [f"test window, {report['_run']['test_clicks_ranked']} clicks, seeds {report['seeds']['trained']}:"]
    for name in ("popularity", "teacher", "student"):
        f = report[name]
        lines.append(f"  {name:<11} recall@10 {f['recall@10']:.4f}  ndcg@10 {f['ndcg@10']:.4f}")
    shared = (
        f"{share['estimate']:.1%} [{share['low']:.1%}, {share['high']:.1%}]"
        if share["estimate"] is not None
        else "n/a (no test clicks)"
    )
    lines += [
        f"student / teacher ndcg@10: {shared}; parameters {report['student']['params_share_of_teacher']:.1%}; ONNX "
        f"{report['student']['speedup_vs_teacher']:.1f}x faster",
        f"teacher + student + export: {report['_run']['teacher_student_export_seconds']:.0f} s",
    ]
    if "compression" in report:
        lines += compression_lines(report["compression"])
    if "ablations" in report:
        from offline.sequence_ablation import headline

        lines.append(f"ablations (validation NDCG@10): {headline(report['ablations'])}")
    return lines


def compression_lines(c: dict[str, Any]) -> list[str]:
    pruning, int8 = c["pruning"], c["int8"]
    lines = []
    if "note" in pruning:
        lines.append(f"pruning {pruning['note']}")
    else:
        (d0, d1), (v0, v1), (m0, m1) = pruning["width"], pruning["validation_ndcg@10"], pruning["onnx_ms_per_request"]
        lines.append(
            f"pruning to {d1} of {d0} channels {'kept' if pruning['kept'] else 'not kept'}: validation ndcg@10 "
            f"{v0:.4f} -> {v1:.4f}, {m0:.4f} -> {m1:.4f} ms per request"
        )
    if "note" in int8 or int8.get("failed"):
        lines.append(f"int8 {int8.get('note') or 'failed: ' + int8['failed']}")
    else:
        lines.append(
            f"int8 {'kept' if int8['kept'] else 'not kept'}: validation ndcg@10 {int8['ndcg_float']:.4f} -> "
            f"{int8['ndcg_int8']:.4f}, {int8['ms_float']:.4f} -> {int8['ms_int8']:.4f} ms per request"
        )
    return lines
