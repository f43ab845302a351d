"""Distilling a sequence model: each teacher term measures a real disagreement (zero when the student
is the teacher, positive otherwise), its gradient reaches the student and never the teacher, and
with the teacher's terms off the loss is the labels' own."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from offline.distill import KDWeights
from offline.sequence_distill import SequenceDistillation, kd_ablation
from offline.sequence_fit import LabelLoss, NextClickNDCG, SequenceFitSettings, fit_sequence_model
from offline.sequence_model import SequenceModel, Shape
from tests.offline.test_sequence_model import cyclic_split

TERMS = {
    "soft": KDWeights(soft=1.0, hint=0.0, rank=0.0, temperature=2.0),
    "rank": KDWeights(soft=0.0, hint=0.0, rank=1.0, candidates=5),
    "hint": KDWeights(soft=0.0, hint=1.0, rank=0.0),
}


@pytest.fixture(scope="module")
def world():
    catalogue, train, valid = cyclic_split(users=30, clicks=10, seed=2)
    return torch.from_numpy(catalogue.item_token_matrix(2)), len(catalogue.item_tokens), train, valid


def model(world, dim: int, seed: int) -> SequenceModel:
    torch.manual_seed(seed)
    return SequenceModel(world[0], world[1], 8, Shape(dim=dim, heads=1, blocks=1, dropout=0.0))


def teacher_term(distillation: SequenceDistillation, student: SequenceModel, windows, idx) -> float:
    """The loss minus its labels part: what the teacher's term adds."""
    with torch.no_grad():
        labels = LabelLoss(distillation.conversion_weight)(student, windows, idx)
        return float(distillation(student, windows, idx) - labels)


@pytest.mark.parametrize("term", sorted(TERMS))
def test_a_term_is_zero_when_the_student_is_the_teacher_and_positive_otherwise(world, term):
    train, idx = world[2], np.arange(16)
    teacher = model(world, 8, seed=0).eval()
    twin = copy.deepcopy(teacher)
    same = SequenceDistillation(teacher, 8, TERMS[term], conversion_weight=0.2)
    with torch.no_grad():
        same.projection.weight.copy_(torch.eye(8))
        same.projection.bias.zero_()
    assert teacher_term(same, twin, train, idx) == pytest.approx(0.0, abs=1e-5)
    other = model(world, 4, seed=1).eval()
    assert teacher_term(SequenceDistillation(teacher, 4, TERMS[term], 0.2), other, train, idx) > 1e-3


def test_without_teacher_terms_the_loss_is_the_labels(world):
    train, idx = world[2], np.arange(16)
    student = model(world, 4, seed=1).eval()
    off = SequenceDistillation(model(world, 8, seed=0), 4, KDWeights.labels_only(), conversion_weight=0.2)
    with torch.no_grad():
        assert float(off(student, train, idx)) == pytest.approx(float(LabelLoss(0.2)(student, train, idx)))


def test_fitting_trains_the_student_and_projection_never_the_teacher(world):
    teacher, student = model(world, 8, seed=0), model(world, 4, seed=1)
    frozen = copy.deepcopy(teacher.state_dict())
    loss = SequenceDistillation(teacher, 4, KDWeights(soft=1.0, hint=1.0, rank=1.0, candidates=5), 0.2)
    projection, start = copy.deepcopy(loss.projection.state_dict()), copy.deepcopy(student.state_dict())
    settings = SequenceFitSettings(epochs=2, batch=16, learning_rate=1e-2, patience=5)
    fit_sequence_model(student, world[2], NextClickNDCG(world[3]), settings, loss)
    for name, weight in teacher.state_dict().items():
        torch.testing.assert_close(weight, frozen[name])
    assert not torch.equal(loss.projection.weight, projection["weight"])
    assert not torch.equal(student.item.weight, start["item.weight"])
    assert "teacher" not in dict(loss.named_modules())  # never saved or trained with the loss


def test_the_ablation_switches_on_one_term_at_a_time_around_the_served_weights():
    served = KDWeights(soft=0.5, hint=0.0, rank=2.0, temperature=2.0, candidates=20)
    variants = kd_ablation(served)
    on = {name: (kd.soft > 0, kd.rank > 0, kd.hint > 0) for name, kd in variants.items()}
    assert on == {
        "labels_only": (False, False, False),
        "soft_only": (True, False, False),
        "rank_only": (False, True, False),
        "hint_only": (False, False, True),
        "served": (True, True, False),
    }
    assert variants["soft_only"].soft == 0.5 and variants["soft_only"].temperature == 2.0
    assert variants["rank_only"].rank == 2.0 and variants["hint_only"].hint == 1.0
