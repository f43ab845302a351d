"""Knowledge distillation losses: what the student learns from the teacher besides the labels.

* soft targets (Hinton et al. 2015): binary cross-entropy between the student's and the teacher's
  click probabilities at temperature T, scaled by T^2 so its gradient keeps its size as T changes;
* hint (FitNets, Romero et al. 2015): MSE between a projection of the student's hidden layer and
  the teacher's click expert mixture;
* ranking / relation (ListNet-style, as in Ranking Distillation, Tang & Wang 2018): for each
  positive row, the teacher's ordering of a candidate list (the clicked item and ``m`` items drawn
  from the catalogue) as a softmax, matched by the student's softmax with KL divergence. The drawn
  items have no labels: this is where the teacher's knowledge of the whole catalogue reaches the
  student, which the full-catalogue test then measures.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class KDWeights:
    """Which distillation terms are on, and their weights (0 = off). ``labels_only()`` is no KD."""

    soft: float = 1.0
    hint: float = 0.1
    rank: float = 1.0
    temperature: float = 2.0
    candidates: int = 16  # items per ranking list: drawn per positive, or the sequence teacher's top

    @classmethod
    def labels_only(cls) -> KDWeights:
        return cls(soft=0.0, hint=0.0, rank=0.0)

    @property
    def uses_teacher(self) -> bool:
        return bool(self.soft or self.hint or self.rank)


def soft_target_loss(student_logit: torch.Tensor, teacher_logit: torch.Tensor, t: float) -> torch.Tensor:
    """(B,), (B,) -> scalar."""
    return F.binary_cross_entropy_with_logits(student_logit / t, torch.sigmoid(teacher_logit / t)) * t * t


def hint_loss(projected_student: torch.Tensor, teacher_hint: torch.Tensor) -> torch.Tensor:
    """(B, D), (B, D) -> scalar."""
    return F.mse_loss(projected_student, teacher_hint)


def listwise_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, t: float = 1.0) -> torch.Tensor:
    """(P, C), (P, C) candidate lists -> KL(teacher || student) of their softmaxes, averaged over P."""
    return F.kl_div(
        F.log_softmax(student_logits / t, dim=1),
        F.log_softmax(teacher_logits / t, dim=1),
        log_target=True,
        reduction="batchmean",
    )
