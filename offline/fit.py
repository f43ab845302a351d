"""Training loops: AdamW, mini-batches in curriculum order, early stopping on the validation window.

``fit`` is the one loop; the teacher and the student differ only in the loss of a batch
(``TeacherLoss``, ``StudentLoss``) and in what validates them.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from offline.curriculum import Curriculum
from offline.data_parallel import rank_and_world, rank_zero_value
from offline.distill import KDWeights, hint_loss, listwise_loss, soft_target_loss
from offline.features import ContentTables, Inputs
from offline.samples import Groups, Rows
from offline.student import CandidateLists, Student
from offline.teacher import Teacher


@dataclass(frozen=True)
class FitSettings:
    epochs: int = 8
    batch_size: int = 1024
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    patience: int = 2
    seed: int = 7
    progress: bool = True


@dataclass
class FitResult:
    val_losses: list[float] = field(default_factory=list)
    best_epoch: int = -1
    seconds: float = 0.0

    @property
    def best_loss(self) -> float:
        return min(self.val_losses) if self.val_losses else float("nan")


def fit(
    model: nn.Module,
    batch_loss: Callable[[nn.Module, np.ndarray], torch.Tensor],
    val_loss: Callable[[], float],
    groups: Groups,
    difficulty: np.ndarray,
    settings: FitSettings,
    curriculum: Curriculum,
    desc: str,
) -> FitResult:
    """Train until ``settings.epochs`` or ``patience`` epochs without a better validation loss;
    leaves ``model`` at its best epoch. ``batch_loss(module, rows)`` computes a batch's loss by
    calling ``module`` (``model`` itself, or its DistributedDataParallel wrapper) on the (b,) rows,
    which are whole groups laid out one after another. ``difficulty`` is (G,), one per group; a
    batch holds about ``settings.batch_size`` rows.

    Under ``torchrun`` (an initialised ``torch.distributed`` group, gloo on CPU) the model is wrapped
    in ``DistributedDataParallel``: it starts every rank from rank 0's weights and averages gradients
    in backward. Every rank draws the same epoch order and takes groups ``rank::world`` of each
    global batch, so one step sees the rows of the single-process step and the ranks stay identical.
    """
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    rank, world = rank_and_world()
    # find_unused_parameters: the single-task ablation leaves the click tower out of the loss.
    net = DistributedDataParallel(model, find_unused_parameters=True) if world > 1 else model
    per_batch = max(world, round(settings.batch_size * len(groups) / max(int(groups.bounds[-1]), 1)))
    result, best_state, since_best, start = FitResult(), None, 0, time.perf_counter()
    for epoch in range(settings.epochs):
        model.train()
        order = curriculum.epoch_order(difficulty, epoch, rng)
        order = order[: len(order) - len(order) % world]  # every rank takes the same number of steps
        batches = range(0, len(order), per_batch)
        # disable=None: tqdm turns itself off when stderr is not a terminal (CI, Docker, the demo's
        # trainer.log), where its carriage returns would pile up into one endless line.
        quiet = None if settings.progress and rank == 0 else True
        with tqdm(batches, desc=f"{desc} epoch {epoch + 1}", leave=False, disable=quiet) as bar:
            for b in bar:
                loss = batch_loss(net, groups.rows(order[b : b + per_batch][rank::world]))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        model.eval()
        with torch.no_grad():
            loss_now = rank_zero_value(val_loss())
        improved = not result.val_losses or loss_now < result.best_loss
        result.val_losses.append(loss_now)
        if improved:
            best_state, result.best_epoch, since_best = copy.deepcopy(model.state_dict()), epoch, 0
        elif curriculum.share(epoch) >= 1.0:  # patience counts only once every row is in play
            since_best += 1
            if since_best >= settings.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - start
    return result


def esmm_loss(
    out_click: torch.Tensor, out_cvr: torch.Tensor, click: torch.Tensor, conversion: torch.Tensor, task: str = "multi"
) -> torch.Tensor:
    """multi: BCE(p_click, click) + BCE(p_click * p_cvr, conversion), both over every row (ESMM).
    conversion: the single-task ablation, BCE(p_cvr, conversion) over every row."""
    if task == "conversion":
        return F.binary_cross_entropy_with_logits(out_cvr, conversion)
    ctcvr = (torch.sigmoid(out_click) * torch.sigmoid(out_cvr)).clamp(1e-7, 1 - 1e-7)
    return F.binary_cross_entropy_with_logits(out_click, click) + F.binary_cross_entropy(ctcvr, conversion)


def group_softmax_loss(click_logit: torch.Tensor, click: torch.Tensor, sizes: np.ndarray) -> torch.Tensor:
    """Listwise loss of whole groups laid out one after another: (n,) logits, (n,) labels, (g,) sizes.

    For each group with both a click and a non-click: cross-entropy between the softmax of its
    logits and the uniform distribution over its clicks (sampled softmax over the click's
    negatives); the mean over those groups, 0 if there are none. Pointwise BCE scores each row
    on its own; this asks directly for the click above its group, which is what ranking measures.
    """
    g, width = len(sizes), int(sizes.max())
    group_of = torch.from_numpy(np.repeat(np.arange(g), sizes))
    slot = torch.from_numpy(np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes))
    logits = torch.full((g, width), -torch.inf).index_put((group_of, slot), click_logit)
    labels = torch.zeros(g, width).index_put((group_of, slot), click)
    clicks = labels.sum(1)
    usable = (clicks > 0) & (clicks < torch.from_numpy(sizes).to(clicks.dtype))
    if not bool(usable.any()):
        return click_logit.sum() * 0.0
    log_p = torch.where(labels > 0, torch.log_softmax(logits, dim=1), torch.zeros_like(logits))
    return (-(log_p * labels).sum(1) / clicks.clamp(min=1))[usable].mean()


class TeacherLoss:
    """Batch loss and validation loss of the teacher over ``Rows``: ESMM's two pointwise terms plus,
    with weight ``listwise``, the group softmax of the click logits."""

    def __init__(
        self,
        model: Teacher,
        tables: ContentTables,
        train: Rows,
        validation: Rows,
        task: str = "multi",
        listwise: float = 0.0,
    ) -> None:
        self.model, self.tables, self.train, self.validation, self.task = model, tables, train, validation, task
        self.listwise = listwise

    def _loss(self, module: nn.Module, rows: Rows, idx: np.ndarray | slice, listwise: float = 0.0) -> torch.Tensor:
        out = module(self.tables.rows(rows, idx))
        click = torch.from_numpy(rows.click[idx])
        loss = esmm_loss(out.click_logit, out.cvr_logit, click, torch.from_numpy(rows.conversion[idx]), self.task)
        if listwise and self.task == "multi":
            loss = loss + listwise * group_softmax_loss(out.click_logit, click, Groups.from_ids(rows.group[idx]).sizes)
        return loss

    def batch(self, module: nn.Module, idx: np.ndarray) -> torch.Tensor:
        return self._loss(module, self.train, idx, self.listwise)

    def validate(self) -> float:
        return _chunked_mean(lambda s: self._loss(self.model, self.validation, s), len(self.validation))


@dataclass
class TeacherTargets:
    """The teacher's outputs on every training row and on each positive's candidate list,
    computed once (eval mode) and reused by every student variant."""

    click_logit: torch.Tensor  # (n,)
    hint: torch.Tensor  # (n, D)
    positives: np.ndarray  # (P,) row indices of positives
    candidates: np.ndarray  # (P, 1 + m) item ids: the clicked item first
    candidate_logits: torch.Tensor  # (P, 1 + m)


def teacher_targets(
    teacher: Teacher, tables: ContentTables, rows: Rows, candidates: int, n_items: int, seed: int = 7
) -> TeacherTargets:
    teacher.eval()
    with torch.no_grad():
        outs = [teacher(tables.rows(rows, s)) for s in _chunks(len(rows))]
        logits = torch.cat([o.click_logit for o in outs])
        hint = torch.cat([o.hint for o in outs])
        positives = np.flatnonzero(rows.click > 0)
        rng = np.random.default_rng(seed)
        cand = np.concatenate(
            [rows.item[positives, None], rng.integers(1, n_items, size=(len(positives), candidates))], axis=1
        )
        # ``candidates=0``: no ranking loss will read them, so the teacher is not run on them.
        cand_logits = (
            torch.cat(
                [_candidate_logits(teacher, tables, rows, positives[s], cand[s]) for s in _chunks(len(positives), 2048)]
            )
            if candidates
            else torch.empty(0)
        )
    return TeacherTargets(logits, hint, positives, cand, cand_logits)


def _candidate_logits(
    model: nn.Module, tables: ContentTables, rows: Rows, pos: np.ndarray, cand: np.ndarray
) -> torch.Tensor:
    """(P,) positive rows, (P, C) items -> (P, C) click logits, each row scored as its own input row
    (P * C rows, each with its positive's user and history: the teacher attends per candidate)."""
    c = cand.shape[1]
    x = tables.tensors(np.repeat(rows.user[pos], c), cand.reshape(-1), np.repeat(rows.recent[pos], c, axis=0))
    return model(x)[0].reshape(cand.shape)


class DistilledStudent(nn.Module):
    """What a distillation step trains: the student plus its training-only hint projection, as one
    module so that DistributedDataParallel sees every trained parameter.
    forward: Inputs, lists -> ((B,) click logits, (B, hint) projected hidden layer or the hidden
    layer, (P, C) candidate logits or None)."""

    def __init__(self, student: Student, hint_dim: int | None) -> None:
        super().__init__()
        self.student = student
        self.projection = nn.Linear(student.hidden_dim, hint_dim) if hint_dim else None

    def forward(
        self, x: Inputs, lists: CandidateLists | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        out = self.student(x, lists)
        hidden = self.projection(out.hidden) if self.projection is not None else out.hidden
        return out.click_logit, hidden, out.candidate_logits


class StudentLoss:
    """Labels plus the enabled distillation terms (``KDWeights``) for one student."""

    def __init__(
        self,
        model: Student,
        tables: ContentTables,
        train: Rows,
        validation: Rows,
        kd: KDWeights,
        targets: TeacherTargets | None,
        hint_dim: int,
    ) -> None:
        self.model, self.tables, self.train, self.validation, self.kd = model, tables, train, validation, kd
        self.targets = targets
        self.net = DistilledStudent(model, hint_dim if kd.hint and targets is not None else None)
        if targets is not None:
            self._pos_slot = np.full(len(train), -1)
            self._pos_slot[targets.positives] = np.arange(len(targets.positives))

    def batch(self, module: nn.Module, idx: np.ndarray) -> torch.Tensor:
        """One forward over the batch rows and, for the ranking loss, its positives' candidate lists."""
        t, kd = self.targets, self.kd
        lists, slots = None, np.empty(0, dtype=np.int64)
        if t is not None and kd.rank:
            in_batch = np.flatnonzero(self._pos_slot[idx] >= 0)
            slots = self._pos_slot[idx[in_batch]]
            cand = t.candidates[slots]
            lists = (
                CandidateLists(
                    torch.from_numpy(in_batch), torch.from_numpy(cand), torch.from_numpy(self.tables.item_tokens[cand])
                )
                if len(slots)
                else None
            )
        logits, hidden, candidate_logits = module(self.tables.rows(self.train, idx), lists)
        loss = F.binary_cross_entropy_with_logits(logits, torch.from_numpy(self.train.click[idx]))
        if t is None:
            return loss
        if kd.soft:
            loss = loss + kd.soft * soft_target_loss(logits, t.click_logit[idx], kd.temperature)
        if kd.hint:
            loss = loss + kd.hint * hint_loss(hidden, t.hint[idx])
        if lists is not None:
            loss = loss + kd.rank * listwise_loss(candidate_logits, t.candidate_logits[slots])
        return loss

    def validate(self) -> float:
        v = self.validation
        return _chunked_mean(
            lambda s: F.binary_cross_entropy_with_logits(
                self.model(self.tables.rows(v, s)).click_logit, torch.from_numpy(v.click[s])
            ),
            len(v),
        )


def _chunks(n: int, size: int = 8192) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _chunked_mean(loss_of: Callable[[slice], torch.Tensor], n: int) -> float:
    total = sum(float(loss_of(s)) * (s.stop - s.start) for s in _chunks(n))
    return total / max(n, 1)
