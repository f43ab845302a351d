"""The three ablations of the offline design, measured in one run on one dataset and one test window.

* distillation: the student with labels only, then + soft targets, + hint, + ranking loss (cumulative),
  all from the same teacher;
* curriculum: the teacher with the curriculum on and off;
* multi-task: conversion AUC on the test rows of the multi-task ESMM teacher (p(click) * p(cvr))
  against a single-task teacher trained on the conversion label alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import torch
from scipy.special import expit

from offline.curriculum import Curriculum
from offline.distill import KDWeights
from offline.evaluate import auc, ranking, sample_clicks
from offline.features import ContentTables
from offline.fit import teacher_targets
from offline.pipeline import (
    SERVED_KD,
    dataset_from_config,
    require_split,
    rows_logits,
    torch_scorer,
    train_student,
    train_teacher,
)
from stream.config import Config
from stream.events import Event

log = logging.getLogger(__name__)


def run_ablations(cfg: Config, events: Iterable[Event]) -> dict[str, Any]:
    start = time.perf_counter()
    torch.set_num_threads(cfg.train.threads)
    t = cfg.train
    ds = dataset_from_config(cfg, events)
    require_split(cfg, ds, test_window=True)
    tables = ContentTables(ds.catalogue)
    clicks = sample_clicks(ds.test_clicks, t.test_clicks, t.seed)

    val_clicks = sample_clicks(ds.validation_clicks, t.validation_clicks, t.seed)

    def figures(model: torch.nn.Module) -> dict[str, float]:
        """Test figures, plus validation NDCG@10: the figure a choice between variants may use."""
        click, _ = rows_logits(model, tables, ds.test)
        scorer = torch_scorer(model)
        return {
            "auc_click": auc(click, ds.test.click),
            **ranking(scorer, clicks, tables),
            "validation_ndcg@10": ranking(scorer, val_clicks, tables)["ndcg@10"],
        }

    report: dict[str, Any] = {"curriculum": {}, "distillation": {}, "multi_task": {}}
    teachers = {}
    for enabled in (True, False):
        trained = train_teacher(ds, tables, cfg, Curriculum(enabled))
        teachers[enabled] = trained.model
        report["curriculum"]["on" if enabled else "off"] = {
            **figures(trained.model),
            "best_epoch": trained.fit.best_epoch + 1,
            "validation_loss": trained.fit.best_loss,
            "seconds": round(trained.fit.seconds, 1),
        }
        arm = "on" if enabled else "off"
        log.info("teacher, curriculum %s: %s", arm, report["curriculum"][arm])

    teacher = teachers[cfg.train.curriculum]
    targets = teacher_targets(teacher, tables, ds.train, SERVED_KD.candidates, len(ds.catalogue.items), t.seed)
    full = SERVED_KD
    steps = {
        "labels_only": KDWeights.labels_only(),
        "+soft": replace(full, hint=0.0, rank=0.0),
        "+soft+hint": replace(full, rank=0.0),
        "+soft+hint+rank": full,
    }
    for name, kd in steps.items():
        trained = train_student(ds, tables, cfg, kd, teacher, targets, label=f"student {name}")
        report["distillation"][name] = {**figures(trained.model), "best_epoch": trained.fit.best_epoch + 1}
        log.info("student %s: %s", name, report["distillation"][name])

    conversion = ds.test.conversion
    click_logit, cvr_logit = rows_logits(teacher, tables, ds.test)
    single = train_teacher(ds, tables, cfg, Curriculum(cfg.train.curriculum), task="conversion")
    _, single_cvr = rows_logits(single.model, tables, ds.test)
    report["multi_task"] = {
        "multi_task_esmm": {"auc_conversion": auc(expit(click_logit) * expit(cvr_logit), conversion)},
        "single_task": {"auc_conversion": auc(single_cvr, conversion)},
        "test_conversions": int(conversion.sum()),
    }
    log.info("multi-task: %s", report["multi_task"])
    report["_run"] = {
        "seconds": round(time.perf_counter() - start, 1),
        "events": ds.events,
        "test_clicks_ranked": len(clicks),
    }
    return report
