"""What each part of the sequence models gives, measured on the validation part only (the test
window is never read here): every arm is trained on the same windows under the registered seed and
reports its best validation NDCG@10 under the served rule, the epoch it was reached and its seconds.

* multi-task: the teacher without its conversion head's loss (``conversion_weight=0``);
* curriculum: the cold teacher with the curriculum switched the other way from ``train.curriculum``;
* warm start: when the served teacher was warm-started, a cold one beside it, and the epoch at which
  the warm one first reached the cold one's best (a run without a previous teacher says so);
* distillation: the student under each variant of ``offline.sequence_distill.kd_ablation`` (labels
  alone, each teacher term alone, the served mix), all from the served teacher.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from offline.curriculum import Curriculum
from offline.sequence_distill import kd_ablation
from offline.sequence_pipeline import Fitted, Prepared, SeedRun, distil, fit_teacher, student_settings, teacher_settings
from offline.warm_start import first_epoch_reaching

log = logging.getLogger(__name__)


def run_ablations(p: Prepared, served: SeedRun) -> dict[str, Any]:
    """``served``: the registered seed's teacher and student, one arm of each comparison."""
    teacher, student = served.teacher, served.distilled  # the distillation arms are compared unpruned
    cold = teacher_settings(p.cfg, served.seed)
    warm_started = bool(teacher.info.get("warm_started"))
    out: dict[str, Any] = {"teacher": figures(teacher)}
    reference = fit_teacher(p, cold) if warm_started else teacher  # the cold teacher of this run
    out["multi_task"] = {
        "multi_task": figures(reference),
        "single_task": figures(fit_teacher(p, replace(cold, conversion_weight=0.0))),
    }
    flipped = replace(cold, curriculum=Curriculum(enabled=not cold.curriculum.enabled))
    arms = {cold.curriculum.enabled: reference, flipped.curriculum.enabled: fit_teacher(p, flipped)}
    out["curriculum"] = {"on": figures(arms[True]), "off": figures(arms[False]), "default": p.cfg.train.curriculum}
    out["warm_start"] = warm_start_arm(teacher, reference) if warm_started else {"note": "no previous teacher"}
    settings = student_settings(p.cfg, served.seed)
    out["distillation"] = {
        name: figures(student if name == "served" else distil(p, teacher.model, replace(settings, kd=kd)))
        for name, kd in kd_ablation(settings.kd).items()
    }
    log.info("sequence ablations (validation NDCG@10): %s", headline(out))
    return out


def figures(f: Fitted) -> dict[str, Any]:
    return {
        "validation_ndcg@10": max(f.fit.validation_ndcg),
        "best_epoch": f.fit.best_epoch,
        "epochs": f.fit.epochs,
        "seconds": f.fit.seconds,
    }


def warm_start_arm(warm: Fitted, cold: Fitted) -> dict[str, Any]:
    # first_epoch_reaching reads losses (lower is better): NDCG negated
    reached = first_epoch_reaching([-v for v in warm.fit.validation_ndcg], -max(cold.fit.validation_ndcg))
    return {"warm": figures(warm), "cold": figures(cold), "warm_epoch_reaching_cold_best": reached}


def headline(out: dict[str, Any]) -> str:
    def v(f: dict[str, Any]) -> str:
        return f"{f['validation_ndcg@10']:.4f}"

    parts = [
        f"multi-task {v(out['multi_task']['multi_task'])} vs single {v(out['multi_task']['single_task'])}",
        f"curriculum on {v(out['curriculum']['on'])} vs off {v(out['curriculum']['off'])}",
        *(f"student {name} {v(f)}" for name, f in out["distillation"].items()),
    ]
    if "warm" in out["warm_start"]:
        parts.append(f"warm {v(out['warm_start']['warm'])} vs cold {v(out['warm_start']['cold'])}")
    return "; ".join(parts)
