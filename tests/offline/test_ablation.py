"""The ablation command measures every variant it names, on one test window, in one run, and each
variant really trains the way its name says.

Quality gaps between the variants are not asserted: on a world small enough for a test (40 ranked
clicks) they move with the seed and change sign. What a broken ablation gets wrong is the
configuration (an arm that still distils, a curriculum that is never switched off), so the training
calls are watched: the order ``Curriculum.epoch_order`` hands each teacher, the distillation losses
each student's batches compute, the task of the teacher's ESMM loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pytest

import offline.ablation as ablation
import offline.fit as fit
from offline.curriculum import Curriculum
from stream.config import load_config
from stream.sources.synthetic import SyntheticConfig, synthetic_events


@dataclass
class Arm:
    """One ``train_teacher`` or ``train_student`` call of the run, and what its training did."""

    kind: str
    curriculum: bool | None = None
    task: str | None = None
    label: str | None = None
    teacher: object = None
    model: object = None
    orders: list[tuple[int, np.ndarray, np.ndarray]] = field(default_factory=list)
    losses: set[str] = field(default_factory=set)


@pytest.fixture(scope="module")
def run():
    cfg = load_config(
        overrides=[
            "train.epochs=2",
            "train.batch_size=256",
            "train.test_clicks=40",
            "train.validation_clicks=40",
            "train.threads=1",
        ]
    )
    events = list(synthetic_events(SyntheticConfig(n_users=120, n_items=100, n_sessions=1000)))
    arms: list[Arm] = []

    def train_teacher(ds, tables, cfg, curriculum, task="multi", model=None):
        arms.append(Arm("teacher", curriculum=curriculum.enabled, task=task))
        trained = real_teacher(ds, tables, cfg, curriculum, task, model)
        arms[-1].model = trained.model
        return trained

    def train_student(ds, tables, cfg, kd, teacher, targets=None, label="student"):
        arms.append(Arm("student", label=label, teacher=teacher))
        return real_student(ds, tables, cfg, kd, teacher, targets, label)

    def epoch_order(self, difficulty, epoch, rng):
        order = real_order(self, difficulty, epoch, rng)
        arms[-1].orders.append((epoch, order.copy(), difficulty))
        return order

    def recorded(name, loss):
        def call(*args, **kwargs):
            arms[-1].losses.add(name)
            return loss(*args, **kwargs)

        return call

    def esmm_loss(out_click, out_cvr, click, conversion, task="multi"):
        arms[-1].losses.add(f"esmm[{task}]")
        return real_esmm(out_click, out_cvr, click, conversion, task)

    real_teacher, real_student = ablation.train_teacher, ablation.train_student
    real_order, real_esmm = Curriculum.epoch_order, fit.esmm_loss
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ablation, "train_teacher", train_teacher)
        mp.setattr(ablation, "train_student", train_student)
        mp.setattr(Curriculum, "epoch_order", epoch_order)
        mp.setattr(fit, "esmm_loss", esmm_loss)
        for name in ("soft_target_loss", "hint_loss", "listwise_loss"):
            mp.setattr(fit, name, recorded(name, getattr(fit, name)))
        report = ablation.run_ablations(cfg, events)
    return cfg, report, arms


def test_every_ablation_variant_is_measured(run):
    _, report, _ = run
    assert set(report["curriculum"]) == {"on", "off"}
    assert list(report["distillation"]) == ["labels_only", "+soft", "+soft+hint", "+soft+hint+rank"]
    for variant in [*report["curriculum"].values(), *report["distillation"].values()]:
        assert math.isfinite(variant["ndcg@10"]) and 0 <= variant["auc_click"] <= 1
    for side in ("multi_task_esmm", "single_task"):
        assert 0 <= report["multi_task"][side]["auc_conversion"] <= 1
    assert report["multi_task"]["test_conversions"] > 0


def test_the_curriculum_on_arm_starts_on_the_easiest_groups_and_the_off_arm_shuffles_them_all(run):
    _, report, arms = run
    on, off = arms[0], arms[1]
    assert (on.kind, on.curriculum, off.kind, off.curriculum) == ("teacher", True, "teacher", False)
    epoch, first, difficulty = on.orders[0]
    n = len(difficulty)
    assert epoch == 0 and len(first) == round(Curriculum().start * n) < n
    assert difficulty[first].max() <= np.delete(difficulty, first).min()
    assert len(off.orders) >= 2
    for _, order, _ in off.orders:
        assert sorted(order) == list(range(n)) and not np.array_equal(order, np.arange(n))
    assert not np.array_equal(off.orders[0][1], off.orders[1][1])
    assert report["curriculum"]["on"]["auc_click"] != report["curriculum"]["off"]["auc_click"]


def test_each_distillation_arm_trains_with_exactly_the_losses_it_names(run):
    cfg, report, arms = run
    students = {arm.label: arm for arm in arms if arm.kind == "student"}
    assert {label: students[label].losses for label in students} == {
        "student labels_only": set(),
        "student +soft": {"soft_target_loss"},
        "student +soft+hint": {"soft_target_loss", "hint_loss"},
        "student +soft+hint+rank": {"soft_target_loss", "hint_loss", "listwise_loss"},
    }
    teacher = next(a.model for a in arms[:2] if a.curriculum == cfg.train.curriculum)
    assert all(arm.teacher is teacher for arm in students.values())
    labels_only, soft = report["distillation"]["labels_only"], report["distillation"]["+soft"]
    assert labels_only["auc_click"] != soft["auc_click"]


def test_the_multi_task_arm_sets_esmm_against_a_teacher_trained_on_conversions_alone(run):
    cfg, report, arms = run
    teachers = [arm for arm in arms if arm.kind == "teacher"]
    assert [(a.curriculum, a.task, a.losses) for a in teachers] == [
        (True, "multi", {"esmm[multi]"}),
        (False, "multi", {"esmm[multi]"}),
        (cfg.train.curriculum, "conversion", {"esmm[conversion]"}),
    ]
    multi = report["multi_task"]
    assert multi["multi_task_esmm"]["auc_conversion"] != multi["single_task"]["auc_conversion"]
