"""offline.fit: the training loop and the teacher's losses.

* ``group_softmax_loss`` is the cross-entropy of each group's softmax against its clicks, averaged
  over the groups that have both a click and a non-click (others carry no ranking signal);
* ``fit`` hands ``batch_loss`` whole groups only, covers every group once per epoch without a
  curriculum, and leaves the model at its best validation epoch.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from offline.curriculum import Curriculum
from offline.fit import FitSettings, fit, group_softmax_loss
from offline.samples import Groups

# -- group softmax ----------------------------------------------------------------------------------


def test_group_softmax_loss_by_hand():
    logits = torch.tensor([2.0, 0.0, 1.0, 0.5, 0.5])
    clicks = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0])
    loss = group_softmax_loss(logits, clicks, np.array([3, 2]))
    first = -(2.0 - math.log(math.exp(2.0) + 1.0 + math.exp(1.0)))
    second = math.log(2.0)  # two equal logits: the click gets half
    assert float(loss) == pytest.approx((first + second) / 2, rel=1e-6)


def test_group_softmax_loss_ignores_groups_without_a_choice():
    logits = torch.tensor([3.0, -1.0, 0.2, 0.7, 0.1])
    clicks = torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0])  # all clicked | none clicked | click vs nothing
    only_mixed = group_softmax_loss(logits[2:], torch.tensor([0.0, 0.0, 1.0]), np.array([2, 1]))
    assert float(group_softmax_loss(logits, clicks, np.array([2, 2, 1]))) == 0.0
    assert float(only_mixed) == 0.0


def test_group_softmax_loss_spreads_the_target_over_several_clicks():
    logits = torch.tensor([1.0, 1.0, -2.0], requires_grad=True)
    loss = group_softmax_loss(logits, torch.tensor([1.0, 1.0, 0.0]), np.array([3]))
    loss.backward()
    assert logits.grad[0] == pytest.approx(logits.grad[1].item())  # both clicks pulled up alike
    assert logits.grad[2] > 0  # the non-click pushed down (gradient descent lowers it)


# -- fit --------------------------------------------------------------------------------------------


class _Recorder:
    """A batch loss that records the rows it was given and fits a scalar to 1."""

    def __init__(self, model: nn.Module) -> None:
        self.model, self.batches = model, []

    def __call__(self, module: nn.Module, rows: np.ndarray) -> torch.Tensor:
        self.batches.append(rows.copy())
        return (module.weight.sum() - 1.0) ** 2


def test_fit_hands_whole_groups_and_every_group_once_per_epoch():
    group = np.repeat(np.arange(40), np.random.default_rng(0).integers(1, 6, 40))
    groups = Groups.from_ids(group)
    model = nn.Linear(1, 1, bias=False)
    rec = _Recorder(model)
    fit(
        model,
        rec,
        lambda: 0.0,
        groups,
        np.zeros(len(groups)),
        FitSettings(epochs=1, batch_size=16, progress=False),
        Curriculum(enabled=False),
        "test",
    )
    seen = np.concatenate(rec.batches)
    assert sorted(seen.tolist()) == list(range(len(group)))  # every row once
    for rows in rec.batches:
        ids = group[rows]
        assert all(np.count_nonzero(ids == g) == np.count_nonzero(group == g) for g in np.unique(ids))
        assert (np.diff(ids) != 0).sum() == len(np.unique(ids)) - 1  # each group contiguous


def test_fit_keeps_the_best_validation_epoch():
    model = nn.Linear(1, 1, bias=False)
    losses = iter([0.5, 0.2, 0.9, 0.8, 0.7])
    snapshots = []

    def val() -> float:
        snapshots.append(model.weight.item())
        return next(losses)

    result = fit(
        model,
        _Recorder(model),
        val,
        Groups(np.array([0, 1, 2])),
        np.zeros(2),
        FitSettings(epochs=5, batch_size=1, patience=2, progress=False),
        Curriculum(enabled=False),
        "test",
    )
    assert result.best_epoch == 1 and result.val_losses == [0.5, 0.2, 0.9, 0.8]  # stopped by patience
    assert model.weight.item() == pytest.approx(snapshots[1])
