"""Distilling the sequence teacher into the student: what the student learns besides the labels,
at every training position followed by a click (``offline.sequence_fit.click_positions``).

The three terms of ``offline.distill``, read on a next-click model's catalogue softmax:

* soft targets: KL(teacher || student) of the two softmaxes over the whole catalogue at temperature
  T, scaled by T^2 -- the teacher's full next-click distribution, where the label is one item;
* ranking: the same KL restricted to the teacher's top ``kd.candidates`` items at each position
  (ListNet over the teacher's own ranking, as in Ranking Distillation, Tang & Wang 2018): the order
  of the head of the list, which is what a top-10 serves and what the full softmax dilutes over a
  long tail;
* hint: MSE between a projection of the student's state (training only, not exported) and the
  teacher's state at the same position.

The teacher runs in eval mode without gradients; the student's labels loss is
``offline.sequence_fit.label_loss`` (with the conversion head), so ``KDWeights.labels_only()`` is
the student trained alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from offline.distill import KDWeights, hint_loss, listwise_loss
from offline.sequence_fit import SequenceFitSettings, catalogue_logits, click_positions, label_loss
from offline.sequence_model import STUDENT, SequenceModel, Shape
from offline.sequences import Windows


class SequenceDistillation(nn.Module):
    """A ``WindowLoss`` for ``fit_sequence_model(student, ...)``; its parameters (the hint's
    projection) train with the student's."""

    def __init__(self, teacher: SequenceModel, student_dim: int, kd: KDWeights, conversion_weight: float) -> None:
        super().__init__()
        self.teacher = [teacher.eval()]  # in a list: not a submodule, so never trained or saved with this
        self.projection = nn.Linear(student_dim, teacher.shape.dim)
        self.kd = kd
        self.conversion_weight = conversion_weight

    def forward(self, student: SequenceModel, w: Windows, idx: np.ndarray) -> torch.Tensor:
        batch = click_positions(w, idx)
        states = student.states(batch.tokens)[batch.at]  # (P, d_s)
        loss, logits = label_loss(student, states, batch, self.conversion_weight)
        kd = self.kd
        if not kd.uses_teacher:
            return loss
        teacher = self.teacher[0]
        with torch.no_grad():
            teacher_states = teacher.states(batch.tokens)[batch.at]  # (P, d_t)
            teacher_logits = catalogue_logits(teacher, teacher_states)  # (P, items)
        if kd.soft:
            t = kd.temperature
            loss = loss + kd.soft * listwise_loss(logits, teacher_logits, t) * t * t
        if kd.rank:
            top = teacher_logits.topk(min(kd.candidates, teacher_logits.shape[1]), dim=1).indices  # (P, C)
            loss = loss + kd.rank * listwise_loss(logits.gather(1, top), teacher_logits.gather(1, top))
        if kd.hint:
            loss = loss + kd.hint * hint_loss(self.projection(states), teacher_states)
        return loss


# Soft targets at T = 2 and the teacher's top 20 as a ranking, no hint: the best validation NDCG@10
# of the variants tried on MovieLens-100K (docs/explanation/offline.md, "Sequence student").
STUDENT_KD = KDWeights(soft=1.0, hint=0.0, rank=1.0, temperature=2.0, candidates=20)
# Batch 32 at 4e-3: best validation NDCG in 11 epochs (0.0729), where 128 at 3e-3 took 28 (0.0735).
STUDENT_FIT = SequenceFitSettings(batch=32, learning_rate=4e-3, label="sequence student")


@dataclass(frozen=True)
class StudentSettings:
    """The served student's shape, distillation and training."""

    shape: Shape = STUDENT
    kd: KDWeights = STUDENT_KD
    fit: SequenceFitSettings = STUDENT_FIT


def kd_ablation(kd: KDWeights) -> dict[str, KDWeights]:
    """The distillation ablation around ``kd``: the labels alone, each teacher term alone (at ``kd``'s
    weight, 1 where ``kd`` has it off), and ``kd`` itself."""
    return {
        "labels_only": KDWeights.labels_only(),
        "soft_only": replace(kd, soft=kd.soft or 1.0, hint=0.0, rank=0.0),
        "rank_only": replace(kd, soft=0.0, hint=0.0, rank=kd.rank or 1.0),
        "hint_only": replace(kd, soft=0.0, hint=kd.hint or 1.0, rank=0.0),
        "served": kd,
    }
