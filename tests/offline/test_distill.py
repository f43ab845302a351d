"""offline.distill: the losses through which the student learns from the teacher.

* soft targets: minimal (zero gradient) where the student's logits equal the teacher's, and the
  T^2 factor keeps the gradient's size comparable across temperatures;
* listwise (ListNet KL): 0 for identical candidate lists, positive otherwise, and blind to a
  constant added to a whole list (a softmax only sees differences);
* hint: plain mean squared error;
* ``KDWeights.labels_only()`` switches every teacher term off.
"""

from __future__ import annotations

import math

import pytest
import torch

from offline.distill import KDWeights, hint_loss, listwise_loss, soft_target_loss


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


# -- soft targets -----------------------------------------------------------------------------------


@pytest.mark.parametrize("t", [1.0, 2.0, 4.0])
def test_soft_target_loss_is_minimal_where_the_student_matches_the_teacher(gen, t):
    teacher = torch.randn(32, generator=gen) * 3
    at_teacher = soft_target_loss(teacher.clone(), teacher, t)
    for _ in range(20):
        other = teacher + torch.randn(32, generator=gen)
        assert soft_target_loss(other, teacher, t) > at_teacher


@pytest.mark.parametrize("t", [1.0, 3.0])
def test_soft_target_gradient_is_zero_at_the_teacher_and_points_back_to_it(gen, t):
    teacher = torch.randn(16, generator=gen) * 2
    student = teacher.clone().requires_grad_(True)
    soft_target_loss(student, teacher, t).backward()
    assert torch.allclose(student.grad, torch.zeros(16), atol=1e-7)
    student = (teacher + 1.0).requires_grad_(True)  # too confident everywhere
    soft_target_loss(student, teacher, t).backward()
    assert (student.grad > 0).all()  # gradient descent lowers the student's logits


def test_soft_target_loss_at_the_minimum_is_the_teachers_entropy_times_t_squared():
    teacher, t = torch.tensor([0.0, 2.0, -4.0]), 2.0
    p = torch.sigmoid(teacher / t)
    entropy = -(p * p.log() + (1 - p) * (1 - p).log()).mean()
    assert soft_target_loss(teacher, teacher, t).item() == pytest.approx(entropy.item() * t * t, rel=1e-5)


def test_soft_target_loss_of_a_single_pair_matches_the_formula():
    s, te, t = 1.0, -0.5, 2.0
    q, p = 1 / (1 + math.exp(-s / t)), 1 / (1 + math.exp(-te / t))
    expected = -(p * math.log(q) + (1 - p) * math.log(1 - q)) * t * t
    assert soft_target_loss(torch.tensor([s]), torch.tensor([te]), t).item() == pytest.approx(expected, rel=1e-5)


# -- listwise ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("t", [1.0, 2.5])
def test_listwise_loss_is_zero_for_identical_lists(gen, t):
    logits = torch.randn(8, 17, generator=gen)
    assert listwise_loss(logits, logits.clone(), t).item() == pytest.approx(0.0, abs=1e-6)


def test_listwise_loss_is_positive_for_different_lists(gen):
    teacher = torch.randn(8, 17, generator=gen)
    student = teacher.clone()
    student[3, 5] += 2.0  # one candidate of one list moves
    assert listwise_loss(student, teacher).item() > 0
    assert listwise_loss(torch.randn(8, 17, generator=gen), teacher).item() > 0


def test_listwise_loss_ignores_a_constant_added_to_a_list(gen):
    teacher, student = torch.randn(6, 9, generator=gen), torch.randn(6, 9, generator=gen)
    shift = torch.randn(6, 1, generator=gen) * 10  # a different constant per list
    base = listwise_loss(student, teacher, 2.0)
    assert listwise_loss(student + shift, teacher, 2.0).item() == pytest.approx(base.item(), rel=1e-4)
    assert listwise_loss(student, teacher - shift, 2.0).item() == pytest.approx(base.item(), rel=1e-4)
    assert listwise_loss(student + shift, student, 2.0).item() == pytest.approx(0.0, abs=1e-5)


def test_listwise_loss_is_kl_of_teacher_to_student_averaged_over_lists():
    teacher = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    student = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    p = torch.softmax(teacher[0], 0)
    kl_first = (p * (p / (1 / 3)).log()).sum().item()
    assert listwise_loss(student, teacher).item() == pytest.approx(kl_first / 2, rel=1e-5)


# -- hint and weights -------------------------------------------------------------------------------


def test_hint_loss_is_the_mean_squared_error(gen):
    a, b = torch.randn(4, 5, generator=gen), torch.randn(4, 5, generator=gen)
    assert hint_loss(a, b).item() == pytest.approx(((a - b) ** 2).mean().item(), rel=1e-6)
    assert hint_loss(a, a).item() == 0.0


def test_labels_only_weights_use_no_teacher():
    off = KDWeights.labels_only()
    assert not off.uses_teacher
    assert (off.soft, off.hint, off.rank) == (0.0, 0.0, 0.0)
    assert KDWeights().uses_teacher
    for term in ("soft", "hint", "rank"):
        assert KDWeights(**{"soft": 0.0, "hint": 0.0, "rank": 0.0, term: 0.5}).uses_teacher
