"""Training a sequence model (``offline.sequence_model``), early-stopped on validation NDCG@k. The
teacher's loss is ``LabelLoss``: next-click cross-entropy over the whole catalogue, plus the
conversion head's log-loss on the clicks; the student's adds the teacher's terms
(``offline.sequence_distill``).

Full softmax rather than sampled: the catalogues this runs on hold thousands of items, where one
(B x L, items) product is cheap and the gradient reaches every item at each step; RecBole's SASRec
is trained the same way (``loss_type: CE``), which makes the side-by-side like for like.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from offline.curriculum import Curriculum, next_click_difficulty
from offline.data_parallel import rank_and_world, rank_zero_value
from offline.sequence_model import SequenceModel, Tokens
from offline.sequences import NextClicks, Windows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SequenceFitSettings:
    epochs: int = 200
    # Batch, step size and patience: chosen on MovieLens-100K's validation part for a short fit at the
    # same NDCG (docs/explanation/offline.md, "Training time"): 64 and 2e-3 reach in 11 epochs what 128
    # and 1e-3 reached in about 30; an epoch costs the same at either batch size.
    batch: int = 64
    learning_rate: float = 2e-3
    weight_decay: float = 0.0
    conversion_weight: float = 0.2  # 0: the single-task ablation (LabelLoss, the default loss)
    patience: int = 3  # epochs without a better validation NDCG before stopping
    k: int = 10
    seed: int = 0
    label: str = "sequence teacher"  # what the progress lines call the model
    curriculum: Curriculum = field(default_factory=lambda: Curriculum(enabled=False))  # easy windows first


@dataclass
class SequenceFitResult:
    epochs: int
    best_epoch: int
    validation_ndcg: list[float] = field(default_factory=list)
    seconds: float = 0.0


def tokens(item: np.ndarray, kind: np.ndarray, gap: np.ndarray) -> Tokens:
    return Tokens(torch.from_numpy(item), torch.from_numpy(kind), torch.from_numpy(gap))


class ClickPositions(NamedTuple):
    """The positions of a batch of windows that are followed by a click."""

    tokens: Tokens  # (B, L) the windows' inputs
    at: torch.Tensor  # (B, L) bool: position followed by a click
    target: torch.Tensor  # (P,) the clicked item rows
    converted: torch.Tensor  # (P,) float: that click converted


def click_positions(w: Windows, idx: np.ndarray) -> ClickPositions:
    target = torch.from_numpy(w.target[idx])
    at = target > 0
    converted = torch.from_numpy(w.converted[idx][at.numpy()]).float()
    return ClickPositions(tokens(w.item[idx], w.kind[idx], w.gap[idx]), at, target[at], converted)


def catalogue_logits(model: SequenceModel, states: torch.Tensor) -> torch.Tensor:
    """(P, d) states -> (P, items) next-click logits over the real items (row r is item row r + 1)."""
    return model.click_logits(states)[:, 1:]


def label_loss(
    model: SequenceModel, states: torch.Tensor, batch: ClickPositions, conversion_weight: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(P, d) click-position states -> (mean next-click cross-entropy over the catalogue, plus the
    conversion head's log-loss weighted ``conversion_weight``; the (P, items) logits)."""
    logits = catalogue_logits(model, states)
    loss = F.cross_entropy(logits, batch.target - 1)
    if conversion_weight:
        loss = loss + conversion_weight * F.binary_cross_entropy_with_logits(
            model.conversion_logit(states, batch.target), batch.converted
        )
    return loss, logits


class LabelLoss:
    """The teacher's loss: next clicks and conversions from the log alone."""

    def __init__(self, conversion_weight: float) -> None:
        self.conversion_weight = conversion_weight

    def __call__(self, model: SequenceModel, w: Windows, idx: np.ndarray) -> torch.Tensor:
        batch = click_positions(w, idx)
        return label_loss(model, model.states(batch.tokens)[batch.at], batch, self.conversion_weight)[0]


class WindowLoss(Protocol):
    def __call__(self, model: SequenceModel, w: Windows, idx: np.ndarray) -> torch.Tensor: ...


class Validation(Protocol):
    """What a fit is early-stopped on: the model's validation NDCG (higher is better)."""

    def __call__(self, model: SequenceModel) -> float: ...


class NextClickNDCG:
    """``Validation`` by RecBole's sequential protocol: mean NDCG@k of each point's clicked item in a
    full sort of the catalogue, nothing excluded."""

    def __init__(self, points: NextClicks, k: int = 10) -> None:
        self.points, self.k = points, k

    def __call__(self, model: SequenceModel) -> float:
        return float(hits(next_click_logits(model, self.points), self.points.target, self.k)[1].mean())


@torch.no_grad()
def next_click_logits(model: SequenceModel, clicks: NextClicks, batch: int = 1024) -> np.ndarray:
    """(N, items + 1) logits of each prediction point's next click, from its last real token's state."""
    model.eval()
    out = []
    for start in range(0, len(clicks), batch):
        s = slice(start, start + batch)
        states = model.last_state(tokens(clicks.item[s], clicks.kind[s], clicks.gap[s]))
        logits = model.click_logits(states)
        logits[:, 0] = -math.inf
        out.append(logits.numpy())
    return np.concatenate(out) if out else np.zeros((0, 0))


def target_ranks(logits: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(N, items) logits, (N,) target rows -> (N,) 0-based rank of each target (ties count for it).
    A non-finite target score is an error, not a rank: NaN compares false with everything, and
    would rank first."""
    target_score = logits[np.arange(len(target)), target][:, None]
    if not np.isfinite(target_score).all():
        raise ValueError(f"{int((~np.isfinite(target_score)).sum())} target scores are not finite")
    ranks: np.ndarray = (logits > target_score).sum(axis=1)
    return ranks


def hits(logits: np.ndarray, target: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(N,) recall@k and NDCG@k of one relevant item per row (ties rank against the target)."""
    ranks = target_ranks(logits, target)
    hit = ranks < k
    return hit.astype(np.float64), np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0)


class _Objective(nn.Module):
    """The model and its loss as one module: ``DistributedDataParallel`` synchronises the gradients
    of what its forward reaches, which includes a loss's own parameters (a distillation's projection)."""

    def __init__(self, model: SequenceModel, loss: WindowLoss, windows: Windows) -> None:
        super().__init__()
        self.model, self.loss, self.windows = model, loss, windows

    def forward(self, idx: np.ndarray, weight: float) -> torch.Tensor:
        return weight * self.loss(self.model, self.windows, idx)


def rank_shares(windows: Windows, batch: np.ndarray, rank: int, world: int) -> tuple[np.ndarray, float]:
    """This rank's windows of a global ``batch`` (every ``world``-th) and the weight of its loss.

    A ``WindowLoss`` is a mean over its windows' click positions, and the ranks' shares hold
    different numbers of them; weighting each rank's mean by ``world`` x its share of the batch's
    positions makes DistributedDataParallel's average of the ranks' gradients the gradient of the
    single-process batch's mean."""
    clicks = (windows.target[batch] > 0).sum(axis=1)
    return batch[rank::world], world * float(clicks[rank::world].sum()) / max(float(clicks.sum()), 1.0)


def fit_sequence_model(
    model: SequenceModel,
    train: Windows,
    validation: Validation,
    settings: SequenceFitSettings,
    loss: WindowLoss | None = None,
) -> SequenceFitResult:
    """Adam on shuffled windows (the easier ones alone in the first epochs under a curriculum);
    after each epoch, ``validation``'s NDCG@k; the best epoch's weights are
    kept (loaded back into ``model``). ``loss``: the labels' (``LabelLoss``) unless given; a loss
    that is a module (a distillation's projection) is trained with the model.

    Under ``torchrun`` the model and loss are wrapped in ``DistributedDataParallel`` (rank 0's
    weights to start with, gradients averaged in backward). Every rank draws the same epoch order
    and takes every ``world``-th window of each global batch of ``settings.batch``, weighted by
    ``rank_shares``, so a step is the single-process step (a last batch with fewer windows than
    ranks is skipped); every rank stops at the same epoch, on rank 0's validation figure."""
    started = time.perf_counter()
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    objective = _Objective(model, loss or LabelLoss(settings.conversion_weight), train)
    opt = torch.optim.Adam(
        [p for p in objective.parameters() if p.requires_grad],
        lr=settings.learning_rate,
        weight_decay=settings.weight_decay,
    )
    rank, world = rank_and_world()
    # find_unused_parameters: the single-task ablation leaves the conversion head out of the loss,
    # and a distillation without hints its projection.
    net = DistributedDataParallel(objective, find_unused_parameters=True) if world > 1 else objective
    result = SequenceFitResult(0, 0)
    best, best_state = -1.0, copy.deepcopy(model.state_dict())
    difficulty = next_click_difficulty(train.target) if settings.curriculum.enabled else np.zeros(len(train))
    for epoch in range(1, settings.epochs + 1):
        model.train()
        order = settings.curriculum.epoch_order(difficulty, epoch - 1, rng)
        for start in range(0, len(order), settings.batch):
            batch = order[start : start + settings.batch]
            if len(batch) < world:  # a tail too short to give every rank a window
                break
            opt.zero_grad()
            net(*rank_shares(train, batch, rank, world)).backward()
            opt.step()
        ndcg = rank_zero_value(validation(model))
        result.validation_ndcg.append(round(ndcg, 5))
        result.epochs = epoch
        if rank == 0:
            log.info("%s epoch %d: validation NDCG@%d %.4f", settings.label, epoch, settings.k, ndcg)
        if ndcg > best:
            best, best_state, result.best_epoch = ndcg, copy.deepcopy(model.state_dict()), epoch
        elif epoch - result.best_epoch >= settings.patience:
            break
    model.load_state_dict(best_state)
    result.seconds = round(time.perf_counter() - started, 1)
    return result
